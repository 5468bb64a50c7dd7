"""A Mailer against a real SMTP server on loopback, with a clock the test moves by hand."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from bot.core.models import ApplyResult, Series
from bot.report.render import ReplyDraft, render_replies
from bot.run.delivery import Mailer
from state.db import Database
from state.models import SeriesRow
from tests.support.replies import COVER, SERIES_URL, make_settings
from tests.support.smtpd import Received, SmtpServer

T0 = datetime(2026, 11, 28, 6, 0, 0)


class Clock:
    """A clock the test moves by hand (naive UTC, like the tables)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def add_series(db: Database, msgid: str = COVER) -> int:
    with db.session() as s:
        row = SeriesRow(list_name="linux-mm", msgid=msgid, subject="series", state="done")
        s.add(row)
        s.flush()
        return row.id


def mailer(
    tmp_path: Path, db: Database, server: SmtpServer, clock: Clock | None = None, **mail: Any
) -> Mailer:
    settings = make_settings(
        tmp_path, mode="smtp", smtp_host=server.host, smtp_port=server.port, **mail
    )
    return Mailer(settings, db, clock=clock or Clock())


def drafts_for(
    m: Mailer, series: Series, applied: ApplyResult, findings: list[Any]
) -> list[ReplyDraft]:
    return render_replies(
        series,
        applied,
        findings,
        m.settings,
        SERIES_URL,
        archive="https://lore.kernel.org/linux-mm",
    )


def parse(got: Received) -> EmailMessage:
    msg = email.message_from_bytes(got.content, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg
