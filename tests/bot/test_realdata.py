"""Intake of real archive data: a month of the virtualization list (487 messages)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.intake.poll import poll_once
from state.db import Database
from state.models import Message, PatchRow, SeriesRow
from tests.support.pi import PublicInboxServer, intake_settings

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MBOX = DATA / "virtualization-2023-05.mbox"

pytestmark = pytest.mark.skipif(
    not MBOX.exists(),
    reason=f"{MBOX} missing (real archive data lives beside the repository, "
    "in ../shared/data; a fresh clone has none)",
)


def test_real_month(tmp_path: Path, pi_server: PublicInboxServer) -> None:
    pi_server.runner.run(
        ["perl", "-e", _import_mboxrd(), pi_server.name],
        input=MBOX.read_bytes(),
        check=True,
        timeout=900,
    )
    settings = intake_settings(
        tmp_path, pi_server, bot_senders=["lkp@intel.com", "noreply@", "syzbot", "patchwork-bot"]
    )
    db = Database(settings.database_url)
    try:
        report = poll_once(settings, db)
        assert report.errors == ()
        assert report.new_messages >= 480  # 487 in the file, a few share a Message-ID
        with db.session() as s:
            msgs = list(s.scalars(select(Message)))
            patch_ids = [p for p in s.scalars(select(PatchRow.msgid))]
            rows = list(s.scalars(select(SeriesRow)))
        kinds = Counter(m.kind for m in msgs)
        assert kinds["patch"] >= 100 and kinds["robot"] >= 1 and kinds["reply"] >= 100
        series_mail = [m for m in msgs if m.kind in ("patch", "cover", "followup")]
        lost = [m.msgid for m in series_mail if m.series_id is None and not m.reason]
        assert lost == []  # every patch mail is in a series, or says why not
        assert len(patch_ids) == len(set(patch_ids))  # exactly one series per patch mail
        in_series = {m.msgid for m in msgs if m.kind == "patch" and m.series_id is not None}
        assert in_series <= set(patch_ids)
        # "X via Virtualization <list>" From lines: the author comes from Reply-To
        assert all("virtualization@" not in r.author_email for r in rows)
        states = Counter(r.state for r in rows)
        assert states["queued"] >= 20 and states["superseded"] >= 1
        assert poll_once(settings, db).new_messages == 0
    finally:
        db.dispose()


def _import_mboxrd() -> str:
    from bot.demo.inbox import IMPORT_MBOX

    return IMPORT_MBOX
