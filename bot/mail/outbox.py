"""Send replies once: record each before sending, mark it sent after.

`Mailer.queue` gives each draft its Message-ID and stores the whole message
(state "pending", or "held" during an embargo) before anything is sent; a
draft whose digest was already recorded for the same target is skipped, so a
re-check of an unchanged series sends nothing. `Mailer.deliver_pending` sends
what is due through SMTP or into the outbox Maildir, applying the mute list,
the rate limits and embargo cancellation, and marks each reply "sent" only
after the transport accepted it. After a crash in between, the next delivery
sends the stored message again, with the same Message-ID.
"""

from __future__ import annotations

import logging
import mailbox
import os
import re
import secrets
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.mail import policy
from bot.report.render import ReplyDraft, bot_version
from config.settings import Settings
from state.db import Database
from state.models import ReplyRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.mail")
SMTP_TIMEOUT = 60.0
_DATE = re.compile(r"^Date: [^\r\n]*", re.MULTILINE)


class MailError(Exception):
    """The transport did not take a message; it stays pending and is retried."""


class MailRefused(MailError):
    """The server refused the message for good (5xx): it is dropped with the reply."""


class Transport(Protocol):
    """Where mail goes: returns the refused recipients (empty when all were accepted)."""

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]: ...


class MaildirTransport:
    """The outbox: one file per message in a Maildir, for a person or a script to send."""

    def __init__(self, path: os.PathLike[str] | str):
        self.path = Path(path)

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.path, create=True)
        box.add(raw.replace(b"\r\n", b"\n"))
        return {}


class SmtpTransport:
    """SMTP with no security, STARTTLS or implicit TLS; login from the environment."""

    def __init__(self, settings: Settings):
        self.mail = settings.mail

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> dict[str, str]:
        m = self.mail
        try:
            if m.smtp_security == "ssl":
                ctx = ssl.create_default_context()
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    m.smtp_host, m.smtp_port, timeout=SMTP_TIMEOUT, context=ctx)
            else:
                smtp = smtplib.SMTP(m.smtp_host, m.smtp_port, timeout=SMTP_TIMEOUT)
            with smtp:
                smtp.ehlo()
                if m.smtp_security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                user = os.environ.get("LOREBOT_SMTP_USER", "")
                if user:
                    smtp.login(user, os.environ.get("LOREBOT_SMTP_PASSWORD", ""))
                options = ["BODY=8BITMIME"] if not raw.isascii() and smtp.has_extn(
                    "8bitmime") else []
                refused = smtp.sendmail(sender, list(recipients), raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as e:
            raise MailRefused(f"SMTP {m.smtp_host}:{m.smtp_port}: all recipients refused: "
                              f"{e.recipients}") from e
        except smtplib.SMTPResponseException as e:
            err = MailRefused if 500 <= e.smtp_code < 600 else MailError
            raise err(f"SMTP {m.smtp_host}:{m.smtp_port}: {e.smtp_code} {e.smtp_error!r}") from e
        except (smtplib.SMTPException, OSError) as e:
            raise MailError(f"SMTP {m.smtp_host}:{m.smtp_port}: {e}") from e
        return {k: f"{code} {msg!r}" for k, (code, msg) in refused.items()}


def make_transport(settings: Settings) -> Transport:
    """The transport the settings ask for (mail.mode)."""
    if settings.mail.mode == "smtp":
        return SmtpTransport(settings)
    return MaildirTransport(settings.paths.outbox)


@dataclass
class DeliveryReport:
    """What one delivery pass did, by Message-ID (reasons beside)."""

    sent: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)  # rate limit: later
    failed: list[tuple[str, str]] = field(default_factory=list)  # transport error: retried


class Mailer:
    """Records replies, then delivers them under the mail policy."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        transport: Transport | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.settings = settings
        self.db = db
        self.transport = transport or make_transport(settings)
        self.clock = clock  # naive UTC, like the tables

    def queue(
        self, series_id: int | None, run_id: int | None, drafts: Sequence[ReplyDraft]
    ) -> list[ReplyRow]:
        """Record each new draft with its Message-ID and whole message; skip known digests."""
        mail = self.settings.mail
        now = self.clock()
        rows: list[ReplyRow] = []
        with self.db.session() as s:
            for d in drafts:
                known = s.scalar(select(ReplyRow.id).where(
                    ReplyRow.digest == d.digest, ReplyRow.in_reply_to == d.in_reply_to
                ).limit(1))
                if known is not None:
                    log.info("reply to <%s> already recorded (digest %s): skipped",
                             d.in_reply_to, d.digest[:12])
                    continue
                msgid = policy.message_id(mail.sender, now, secrets.token_hex(8))
                msg = policy.build_message(d, msgid, mail.sender, _aware(now), bot_version())
                row = ReplyRow(
                    series_id=series_id, run_id=run_id, msgid=msgid,
                    in_reply_to=d.in_reply_to, to_addrs=list(d.to), cc_addrs=list(d.cc),
                    author_email=parseaddr(d.to[0])[1].lower() if d.to else "",
                    subject=d.subject, raw=msg.as_bytes().decode("utf-8"),
                    digest=d.digest, state="pending", created_at=now,
                )
                if not d.to and not d.cc:
                    row.state, row.reason = "dropped", "no recipients"
                elif mail.embargo_minutes > 0:
                    row.state = "held"
                    row.not_before = now + timedelta(minutes=mail.embargo_minutes)
                    row.reason = f"embargo until {row.not_before:%Y-%m-%d %H:%M} UTC"
                s.add(row)
                s.flush()
                rows.append(row)
        return rows

    def deliver_pending(self) -> DeliveryReport:
        """Send the pending replies and the held ones whose embargo passed."""
        report = DeliveryReport()
        now = self.clock()
        with self.db.session() as s:
            ids = list(s.scalars(select(ReplyRow.id).where(or_(
                ReplyRow.state == "pending",
                (ReplyRow.state == "held") & (ReplyRow.not_before <= now),
            )).order_by(ReplyRow.id)))
        for reply_id in ids:
            self._deliver_one(reply_id, report)
        return report

    def _deliver_one(self, reply_id: int, report: DeliveryReport) -> None:
        mail = self.settings.mail
        now = self.clock()
        with self.db.session() as s:
            row = s.get(ReplyRow, reply_id)
            if row is None or row.state not in ("pending", "held"):
                return
            series = s.get(SeriesRow, row.series_id) if row.series_id is not None else None
            why = policy.superseded_reason(series) or policy.mute_reason(
                row.to_addrs, row.cc_addrs, mail.mute, self.settings.lists)
            if why:
                row.state, row.reason = "dropped", why
                report.dropped.append((row.msgid, why))
                log.info("reply <%s> dropped: %s", row.msgid, why)
                return
            total, by_author = self._sent_last_hour(s, row.author_email, now)
            why = policy.rate_reason(row.author_email, total, by_author, mail)
            if why:
                row.reason = why
                report.deferred.append((row.msgid, why))
                return
            # the Date is when it leaves; stored before sending, like the rest
            row.raw = _with_date(row.raw, now)
            raw, msgid = row.raw.encode("utf-8"), row.msgid
            rcpts = policy.envelope_recipients(row.to_addrs, row.cc_addrs)
        try:
            refused = self.transport.send(parseaddr(mail.sender)[1], rcpts, raw)
        except Exception as e:  # any transport failure: keep it, retry next pass
            refused_for_good = isinstance(e, MailRefused)
            why = f"{'refused' if refused_for_good else 'send failed'}: {e}"
            with self.db.session() as s:
                row = s.get(ReplyRow, reply_id)
                if row is not None:
                    row.reason = why
                    if refused_for_good:
                        row.state = "dropped"
            (report.dropped if refused_for_good else report.failed).append((msgid, why))
            log.warning("reply <%s> not sent: %s", msgid, e)
            return
        with self.db.session() as s:
            row = s.get(ReplyRow, reply_id)
            if row is not None:
                row.state, row.sent_at = "sent", self.clock()
                row.reason = ("refused: " + ", ".join(f"{a} ({r})" for a, r in refused.items())
                              if refused else "")
        report.sent.append(msgid)
        log.info("reply <%s> sent", msgid)

    @staticmethod
    def _sent_last_hour(s: Session, author: str, now: datetime) -> tuple[int, int]:
        since = now - timedelta(hours=1)
        recent = (ReplyRow.state == "sent") & (ReplyRow.sent_at >= since)
        total = s.scalar(select(func.count()).select_from(ReplyRow).where(recent)) or 0
        mine = s.scalar(select(func.count()).select_from(ReplyRow).where(
            recent & (ReplyRow.author_email == author))) or 0
        return total, mine


def _aware(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def _with_date(raw: str, now: datetime) -> str:
    """The stored message with its Date set to `now` (everything else byte for byte)."""
    head, sep, body = raw.partition("\r\n\r\n")
    head = _DATE.sub(f"Date: {format_datetime(_aware(now))}", head, count=1)
    return head + sep + body
