"""Replies through a real SMTP server on loopback: golden mails, once-only, policy.

Golden files: tests/golden/replies/*.eml hold each mail as the server got it,
normalized (tests/support/golden.py).
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.mail.transport import SmtpTransport
from bot.report.render import ReplyDraft, render_replies
from bot.run.delivery import Mailer
from state.db import Database
from state.models import ReplyRow, SeriesRow
from tests.support.golden import check_golden
from tests.support.mailer import T0, Clock, add_series, drafts_for, mailer, parse
from tests.support.replies import (
    COVER,
    SERIES_URL,
    applied_on_iommu,
    applied_on_mm,
    balloon_series,
    build_error,
    iommu_warning,
    joerg_patch,
    make_settings,
    not_applied,
    removed_member,
    w1_warning,
)
from tests.support.smtpd import SmtpServer


def send_all(m: Mailer, series_id: int, drafts: list[ReplyDraft]) -> None:
    m.queue(series_id, None, drafts)
    report = m.deliver_pending()
    assert not report.failed and not report.deferred and not report.dropped


# --- golden mails, one per kind of report ---------------------------------------------


def test_golden_build_error_in_derived_config(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    m = mailer(tmp_path, db, smtp_server)
    series = balloon_series()
    send_all(m, add_series(db), drafts_for(m, series, applied_on_mm(), [build_error()]))
    (got,) = smtp_server.received
    check_golden("build-error-derived-config", got.content)
    msg = parse(got)
    assert msg["In-Reply-To"] == f"<{series.patches[1].msgid}>"
    assert msg["References"] == f"<{COVER}> <{series.patches[1].msgid}>"
    assert got.rcpt_tos == [
        "dana.kovac@example.org",
        "akpm@linux-foundation.org",
        "david@example.com",
        "linux-mm@kvack.org",
        "linux-kernel@vger.kernel.org",
        "linuxppc-dev@lists.ozlabs.org",
    ]
    assert got.mail_from == "lorebot@lorebot.example.org"
    with db.session() as s:
        row = s.scalars(select(ReplyRow)).one()
        assert msg["Message-ID"] == f"<{row.msgid}>" and row.state == "sent"
        assert row.msgid.startswith("lorebot-") and row.msgid.endswith("@lorebot.example.org")


def test_golden_w1_warning_non_ascii_author_and_subject(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    m = mailer(tmp_path, db, smtp_server)
    series = joerg_patch()
    send_all(
        m,
        add_series(db, series.msgid),
        drafts_for(m, series, applied_on_iommu(), [iommu_warning()]),
    )
    (got,) = smtp_server.received
    check_golden("w1-warning", got.content)
    assert "BODY=8BITMIME" in got.mail_options  # the body is UTF-8, sent as 8bit
    raw_head = got.content.split(b"\r\n\r\n")[0]
    assert raw_head.isascii(), "headers must be RFC 2047-encoded"
    msg = parse(got)
    assert msg["Subject"] == (
        "Re: [PATCH] iommu/amd: do not warn about the ‘ivrs_ioapic’ override twice"
    )
    assert msg["To"].addresses[0].display_name == "Jörg Rödel"
    assert msg["To"].addresses[0].addr_spec == "joro@8bytes.example.org"
    assert "Hi Jörg," in msg.get_content()
    assert msg["In-Reply-To"] == f"<{series.msgid}>" and msg["References"] == f"<{series.msgid}>"


def test_golden_semantic_finding_in_unbuilt_file(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    m = mailer(tmp_path, db, smtp_server)
    send_all(
        m, add_series(db), drafts_for(m, balloon_series(), applied_on_mm(), [removed_member()])
    )
    (got,) = smtp_server.received
    check_golden("semantic-removed-member", got.content)
    assert "obj-$(CONFIG_CMM)" in parse(got).get_content()


def test_golden_series_does_not_apply(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    m = mailer(tmp_path, db, smtp_server)
    series = balloon_series()
    send_all(m, add_series(db), drafts_for(m, series, not_applied(), []))
    (got,) = smtp_server.received
    check_golden("does-not-apply", got.content)
    msg = parse(got)
    assert msg["In-Reply-To"] == f"<{COVER}>"
    body = msg.get_content()
    assert f"Message-ID: <{series.patches[1].msgid}>" in body
    assert "error: mm/balloon_compaction.c: patch does not apply" in body


def test_golden_findings_in_several_patches(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    m = mailer(tmp_path, db, smtp_server)
    series = balloon_series()
    findings = [build_error(2), w1_warning(2), removed_member(3)]
    send_all(m, add_series(db), drafts_for(m, series, applied_on_mm(), findings))
    got = smtp_server.received
    assert [parse(g)["In-Reply-To"] for g in got] == [
        f"<{COVER}>",
        f"<{series.patches[1].msgid}>",
        f"<{series.patches[2].msgid}>",
    ]
    for name, g in zip(("multi-0-summary", "multi-2", "multi-3"), got, strict=True):
        check_golden(name, g.content)
    assert len({parse(g)["Message-ID"] for g in got}) == 3


# --- once and only once ---------------------------------------------------------------


def test_recheck_of_unchanged_series_sends_nothing(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    m = mailer(tmp_path, db, smtp_server)
    sid = add_series(db)
    drafts = drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
    send_all(m, sid, drafts)
    again = drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
    assert m.queue(sid, None, again) == []
    assert m.deliver_pending().sent == []
    assert len(smtp_server.received) == 1


class CrashingTransport(SmtpTransport):
    """The SMTP transport, but the first send dies as a crash would."""

    crashed = False

    def send(self, sender: str, recipients: Any, raw: bytes) -> dict[str, str]:
        if not self.crashed:
            self.crashed = True
            raise ConnectionResetError("worker killed")
        return super().send(sender, recipients, raw)


def test_crash_between_recording_and_sending_sends_once_same_msgid(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    clock = Clock()
    m = mailer(tmp_path, db, smtp_server, clock)
    sid = add_series(db)
    (row,) = m.queue(sid, None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()]))
    # the process dies before delivering; a new one starts from the database
    restarted = Mailer(m.settings, db, transport=CrashingTransport(m.settings), clock=m.clock)
    first = restarted.deliver_pending()
    assert first.sent == [] and first.failed and smtp_server.received == []
    with db.session() as s:
        assert s.get(ReplyRow, row.id).state == "pending"  # type: ignore[union-attr]
    clock.now += timedelta(minutes=2)  # after the retry's backoff
    second = restarted.deliver_pending()
    assert second.sent == [row.msgid]
    (got,) = smtp_server.received
    assert parse(got)["Message-ID"] == f"<{row.msgid}>"
    assert restarted.deliver_pending().sent == [] and len(smtp_server.received) == 1


# --- policy ---------------------------------------------------------------------------


def test_rate_limits_defer_then_send(tmp_path: Path, db: Database, smtp_server: SmtpServer) -> None:
    clock = Clock()
    m = mailer(tmp_path, db, smtp_server, clock, rate_per_hour=2, rate_per_author_per_hour=10)
    findings = [build_error(2), w1_warning(2), removed_member(3)]
    m.queue(add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), findings))
    report = m.deliver_pending()
    assert len(report.sent) == 2 and len(report.deferred) == 1
    assert "rate limit: 2 replies sent in the last hour (limit 2)" in report.deferred[0][1]
    clock.now += timedelta(minutes=61)
    assert len(m.deliver_pending().sent) == 1
    assert len(smtp_server.received) == 3


def test_rate_limit_per_author(tmp_path: Path, db: Database, smtp_server: SmtpServer) -> None:
    m = mailer(tmp_path, db, smtp_server, rate_per_author_per_hour=1)
    findings = [build_error(2), removed_member(3)]
    m.queue(add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), findings))
    report = m.deliver_pending()
    assert len(report.sent) == 1
    assert report.deferred[0][1].startswith("rate limit: 1 replies to dana.kovac@example.org")


@pytest.mark.parametrize(
    ("mute", "who"),
    [
        ("Dana.Kovac@example.org", "the author dana.kovac@example.org"),
        ("linux-mm", "the list linux-mm@kvack.org"),
        ("linuxppc-dev@lists.ozlabs.org", "the list linuxppc-dev@lists.ozlabs.org"),
    ],
)
def test_mute_list_drops_with_reason(
    tmp_path: Path, db: Database, smtp_server: SmtpServer, mute: str, who: str
) -> None:
    m = mailer(tmp_path, db, smtp_server, mute=[mute])
    m.queue(add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()]))
    report = m.deliver_pending()
    assert report.sent == [] and smtp_server.received == []
    assert report.dropped[0][1] == f"muted: {who} opted out (mail.mute: {mute})"
    with db.session() as s:
        row = s.scalars(select(ReplyRow)).one()
        assert row.state == "dropped" and row.reason.startswith("muted:")


def test_embargo_holds_then_sends(tmp_path: Path, db: Database, smtp_server: SmtpServer) -> None:
    clock = Clock()
    m = mailer(tmp_path, db, smtp_server, clock, embargo_minutes=30)
    (row,) = m.queue(
        add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
    )
    assert row.state == "held" and row.not_before == T0 + timedelta(minutes=30)
    assert m.deliver_pending().sent == []
    clock.now += timedelta(minutes=31)
    assert m.deliver_pending().sent == [row.msgid]
    (got,) = smtp_server.received
    assert parse(got)["Date"] == "Sat, 28 Nov 2026 06:31:00 +0000"  # when it left


def test_embargo_cancelled_by_new_revision(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    clock = Clock()
    m = mailer(tmp_path, db, smtp_server, clock, embargo_minutes=30)
    sid = add_series(db)
    m.queue(sid, None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()]))
    v3 = add_series(db, "20261128051500.1234-1-dana.kovac@example.org")
    with db.session() as s:
        old = s.get(SeriesRow, sid)
        assert old is not None
        old.state, old.superseded_by = "superseded", v3
    clock.now += timedelta(minutes=31)
    report = m.deliver_pending()
    assert report.sent == [] and smtp_server.received == []
    assert report.dropped[0][1] == f"superseded: series {sid} was replaced by series {v3}"


def test_outbox_maildir_is_the_default(tmp_path: Path, db: Database) -> None:
    settings = make_settings(tmp_path)
    m = Mailer(settings, db, clock=Clock())
    m.queue(
        add_series(db),
        None,
        render_replies(balloon_series(), applied_on_mm(), [build_error()], settings, SERIES_URL),
    )
    report = m.deliver_pending()
    assert len(report.sent) == 1, report
    (path,) = (settings.paths.outbox / "new").iterdir()
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["X-Lorebot"] and msg["Subject"].startswith("Re: [PATCH v2 2/3]")


class _Login:
    """aiosmtpd authenticator that accepts one user and records who logged in."""

    def __init__(self) -> None:
        self.users: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"lorebot"
            and auth_data.password == b"s3cret"
        )
        if ok:
            self.users.append("lorebot")
        return AuthResult(success=ok)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_from_environment(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = _Login()
    monkeypatch.setenv("LOREBOT_SMTP_USER", "lorebot")
    monkeypatch.setenv("LOREBOT_SMTP_PASSWORD", "s3cret")
    with SmtpServer(
        authenticator=login,
        auth_required=True,
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],
    ) as server:
        m = mailer(tmp_path, db, server)
        send_all(
            m, add_series(db), drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
        )
        assert len(server.received) == 1 and login.users == ["lorebot"]


def test_refused_recipients(tmp_path: Path, db: Database) -> None:
    everyone = {
        "dana.kovac@example.org",
        "akpm@linux-foundation.org",
        "david@example.com",
        "linux-mm@kvack.org",
        "linux-kernel@vger.kernel.org",
        "linuxppc-dev@lists.ozlabs.org",
    }
    sid = add_series(db)
    with SmtpServer(refuse={"david@example.com"}) as server:
        m = mailer(tmp_path, db, server)
        m.queue(sid, None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()]))
        assert len(m.deliver_pending().sent) == 1  # one refused Cc does not stop it
        assert set(server.received[0].rcpt_tos) == everyone - {"david@example.com"}
    with db.session() as s:
        (row,) = s.scalars(select(ReplyRow))
        assert row.state == "sent" and row.reason.startswith("refused: david@example.com (550")


def test_list_mangled_from_with_reply_to_reaches_the_author(
    tmp_path: Path, db: Database, smtp_server: SmtpServer
) -> None:
    series = joerg_patch()
    mangled = series.patches[0].model_copy(
        update={
            "author": "=?UTF-8?q?J=C3=B6rg_R=C3=B6del_via_iommu?= <iommu@lists.linux.dev>",
            "author_email": "iommu@lists.linux.dev",
            "reply_to": "=?UTF-8?q?J=C3=B6rg_R=C3=B6del?= <joro@8bytes.example.org>",
        }
    )
    series = series.model_copy(update={"patches": (mangled,)})
    m = mailer(tmp_path, db, smtp_server)
    send_all(
        m,
        add_series(db, series.msgid),
        drafts_for(m, series, applied_on_iommu(), [iommu_warning()]),
    )
    (got,) = smtp_server.received
    msg = parse(got)
    assert [str(a) for a in msg["To"].addresses] == ["Jörg Rödel <joro@8bytes.example.org>"]
    assert got.rcpt_tos[0] == "joro@8bytes.example.org"
    assert "iommu@lists.linux.dev" in got.rcpt_tos  # the list still gets it, once
    assert got.rcpt_tos.count("iommu@lists.linux.dev") == 1
