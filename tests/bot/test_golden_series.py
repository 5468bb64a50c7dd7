"""A 20-patch mm series on linux-source-6.12 through the real pipeline to a real SMTP
server: checkpatch complains about 18 patches, the build breaks in two; two patch mails
and one summary reach the server, each equal to its golden file and clean.

One arch (the host's x86_64) keeps the run short; the default four find the same two
problems (tests/checks/build/test_build_plan_kernel.py, bench/plan.py).
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.demo.series import write_series
from bot.intake.poll import poll_once
from bot.run import claims, queue
from bot.run.delivery import Mailer
from bot.run.worker import run_series
from config.settings import load_settings
from state.db import Database
from state.models import FindingRow
from tests.support import kernel
from tests.support.golden import assert_clean, check_golden, normalized
from tests.support.mm_series import mm_series
from tests.support.pi import PublicInboxServer
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.kernel


def test_twenty_patches_two_problems_two_mails(
    tmp_path: Path,
    pi_server: PublicInboxServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # fixed dates: the same commits, so the same Message-IDs, in every run
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2026-11-27T10:15:00+0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-11-27T10:15:00+0000")
    kernel.kernel_git_dir()
    writer = kernel.kernel_slot("golden-writer")
    mailed = write_series(
        writer,
        mm_series(20),
        list_address=pi_server.address,
        cover_subject="mm: notes, and two changes",
        cover_body="Twenty small mm changes.",
        msgid_domain="golden.example.org",
    )
    pi_server.post_many(mailed.mails)
    settings = load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(kernel.test_cache())},
        lists=[
            {
                "name": pi_server.name,
                "url": pi_server.url,
                "address": pi_server.address,
                "trees": ["linux"],
            }
        ],
        trees=[{"name": "linux", "url": "", "branches": ["master"]}],
        build={"arches": ["x86_64"]},
        mail={
            "mode": "smtp",
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "sender": "lorebot <lorebot@lorebot.example.org>",
            "reported_by": "lorebot <lorebot@lorebot.example.org>",
        },
        web={"base_url": "https://lorebot.example.org"},
    )
    db = Database(settings.database_url)
    try:
        assert poll_once(settings, db).errors == ()
        worker = claims.holder_name("w0")
        sid = queue.claim_next(db, worker)
        assert sid is not None
        with claims.held(worker):
            result = run_series(settings, db, sid, worker)
        assert result is not None and not result.outcome.fault, result
        report = Mailer(settings, db).deliver_pending()
        assert not report.failed and not report.deferred
        with db.session() as s:
            found = list(s.scalars(select(FindingRow)))
    finally:
        db.dispose()

    by_check: dict[str, set[int | None]] = {}
    for f in found:
        by_check.setdefault(f.check, set()).add(f.patch_index)
    # checkpatch complains about most patches; the build only about patches 6 and 10
    assert len(by_check.get("checkpatch", set())) >= 15, by_check
    assert by_check.get("build") == {6, 10}, by_check

    got = smtp_server.received
    mails = [email.message_from_bytes(g.content, policy=email.policy.default) for g in got]
    targets = [str(m["In-Reply-To"]).strip("<>") for m in mails]
    patch_ids = {mailed.msgids[i]: i for i in range(1, 21)}
    patches = sorted(patch_ids[t] for t in targets if t in patch_ids)
    summaries = [t for t in targets if t == mailed.msgids[0]]
    assert patches == [6, 10] and len(summaries) <= 1 and len(got) == 2 + len(summaries)
    for g, target in zip(got, targets, strict=True):
        name = f"mm20-patch-{patch_ids[target]:02d}" if target in patch_ids else "mm20-summary"
        check_golden(name, g.content)
        assert_clean(name, normalized(g.content))
        assert "checkpatch" not in g.content.decode() and "lorebot bench" not in g.content.decode()
