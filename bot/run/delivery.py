"""Send replies once: record each before sending, mark it sent after.

`Mailer.queue` gives each draft its Message-ID and stores the whole message
(state "pending", or "held" during an embargo) before anything is sent; a
draft whose digest was already recorded for the same target is skipped, so a
re-check of an unchanged series sends nothing. `Mailer.deliver_pending` sends
what is due through SMTP or into the outbox Maildir, applying the mute list,
the rate limits and embargo cancellation. Each reply is first claimed
("sending", a compare-and-set like series claims), so two services on one
database never send it twice, and marked "sent" only after the transport
accepted it. A temporary failure keeps it pending with a growing backoff; a
relay that refuses us is a configuration fault, recorded in `faults`, and
drops nothing (bot.smtp sorts the answers). After a crash while sending, the
claim is found dead (bot.claims) and the stored message is sent again, with
the same Message-ID.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parseaddr

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from bot.core.states import ReplyState
from bot.intake import commands
from bot.mail import policy
from bot.mail.transport import (
    MailConfigFault,
    MailRefused,
    MailTemporary,
    Transport,
    make_transport,
)
from bot.report.render import ReplyDraft, bot_version
from bot.run import claims, faults
from config.settings import Settings
from state.db import Database
from state.models import ReplyRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.mail")
_DATE = re.compile(r"^Date: [^\r\n]*", re.MULTILINE)


@dataclass
class DeliveryReport:
    """What one delivery pass did, by Message-ID (reasons beside)."""

    sent: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)  # rate limit: later
    failed: list[tuple[str, str]] = field(default_factory=list)  # not taken: retried
    fault: str = ""  # the relay refuses us: a configuration fault, replies kept pending


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
        self.holder = claims.holder_name("mail")

    def queue(
        self, series_id: int | None, run_id: int | None, drafts: Sequence[ReplyDraft]
    ) -> list[ReplyRow]:
        """Record each new draft with its Message-ID and whole message; skip known digests."""
        mail = self.settings.mail
        now = self.clock()
        rows: list[ReplyRow] = []
        with self.db.session() as s:
            for d in drafts:
                known = s.scalar(
                    select(ReplyRow.id)
                    .where(ReplyRow.digest == d.digest, ReplyRow.in_reply_to == d.in_reply_to)
                    .limit(1)
                )
                if known is not None:
                    log.info(
                        "reply to <%s> already recorded (digest %s): skipped",
                        d.in_reply_to,
                        d.digest[:12],
                    )
                    continue
                msgid = d.msgid or policy.message_id(mail.sender, now, secrets.token_hex(8))
                msg = policy.build_message(d, msgid, mail.sender, _aware(now), bot_version())
                row = ReplyRow(
                    series_id=series_id,
                    run_id=run_id,
                    msgid=msgid,
                    in_reply_to=d.in_reply_to,
                    to_addrs=list(d.to),
                    cc_addrs=list(d.cc),
                    author_email=parseaddr(d.to[0])[1].lower() if d.to else "",
                    subject=d.subject,
                    raw=msg.as_bytes().decode("utf-8"),
                    digest=d.digest,
                    state=ReplyState.PENDING,
                    created_at=now,
                    items=[i.model_dump(mode="json") for i in d.items],
                )
                if not d.to and not d.cc:
                    row.state, row.reason = ReplyState.DROPPED, "no recipients"
                elif mail.embargo_minutes > 0:
                    row.state = ReplyState.HELD
                    row.not_before = now + timedelta(minutes=mail.embargo_minutes)
                    row.reason = f"embargo until {row.not_before:%Y-%m-%d %H:%M} UTC"
                s.add(row)
                s.flush()
                rows.append(row)
        return rows

    def _due(self, now: datetime) -> ColumnElement[bool]:
        # pending ones wait out a retry's backoff; held ones their embargo
        return or_(
            (ReplyRow.state == ReplyState.PENDING)
            & (ReplyRow.not_before.is_(None) | (ReplyRow.not_before <= now)),
            (ReplyRow.state == ReplyState.HELD) & (ReplyRow.not_before <= now),
        )

    def deliver_pending(self, should_stop: Callable[[], bool] = lambda: False) -> DeliveryReport:
        """Send the due replies, each claimed first, so that no two deliverers send one.

        The pass ends early when the server is unreachable or refuses us
        (a configuration fault, recorded for the page), or when `should_stop`.
        """
        report = DeliveryReport()
        now = self.clock()
        with self.db.session() as s:
            ids = list(s.scalars(select(ReplyRow.id).where(self._due(now)).order_by(ReplyRow.id)))
        with claims.held(self.holder):
            for reply_id in ids:
                if should_stop() or not self._deliver_one(reply_id, report):
                    break
        return report

    def _claim(self, reply_id: int, now: datetime) -> bool:
        """Compare-and-set the reply to "sending" by us; False if someone else has it."""
        with self.db.session() as s:
            result = s.execute(
                update(ReplyRow)
                .where(ReplyRow.id == reply_id, self._due(now))
                .values(
                    state=ReplyState.SENDING,
                    claimed_by=self.holder,
                    claimed_at=now,
                    heartbeat_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            return getattr(result, "rowcount", 0) == 1

    def _release(self, s: Session, reply_id: int, **values: object) -> bool:
        """Leave our claim with `values`; False if it was taken from us meanwhile."""
        result = s.execute(
            update(ReplyRow)
            .where(
                ReplyRow.id == reply_id,
                ReplyRow.state == ReplyState.SENDING,
                ReplyRow.claimed_by == self.holder,
            )
            .values(claimed_by="", heartbeat_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    def _deliver_one(self, reply_id: int, report: DeliveryReport) -> bool:
        """Claim, check the policy, send; False when the rest of the pass should wait."""
        mail = self.settings.mail
        now = self.clock()
        if not self._claim(reply_id, now):
            return True
        with self.db.session() as s:
            row = s.get(ReplyRow, reply_id)
            assert row is not None
            series = s.get(SeriesRow, row.series_id) if row.series_id is not None else None
            why = (
                policy.superseded_reason(series.id, series.state, series.superseded_by)
                if series is not None
                else ""
            ) or policy.mute_reason(row.to_addrs, row.cc_addrs, mail.mute, self.settings.lists)
            msgid = row.msgid
            rcpts = policy.envelope_recipients(row.to_addrs, row.cc_addrs)
            asked = commands.muted(s, [row.author_email, *rcpts])
            if not why and row.author_email in asked:
                why = f"muted: {row.author_email} asked not to be mailed (#lorebot mute)"
            rcpts = [a for a in rcpts if a.lower() not in asked]
            if not why and not rcpts:
                why = "muted: every recipient asked not to be mailed (#lorebot mute)"
            if why:
                self._release(s, reply_id, state=ReplyState.DROPPED, reason=why)
                report.dropped.append((msgid, why))
                log.info("reply <%s> dropped: %s", msgid, why)
                return True
            total, by_author = self._sent_last_hour(s, row.author_email, now)
            why = policy.rate_reason(row.author_email, total, by_author, mail)
            if why:
                self._release(s, reply_id, state=ReplyState.PENDING, reason=why)
                report.deferred.append((msgid, why))
                return True
            # the Date is when it leaves; stored before sending, like the rest
            row.raw = _with_date(row.raw, now)
            raw, attempts = row.raw.encode("utf-8"), row.attempts
        try:
            refused = self.transport.send(parseaddr(mail.sender)[1], rcpts, raw)
        except MailRefused as e:
            self._settle(reply_id, state=ReplyState.DROPPED, reason=f"refused: {e}")
            report.dropped.append((msgid, f"refused: {e}"))
            log.warning("reply <%s> refused: %s", msgid, e)
            return True
        except MailConfigFault as e:
            # not this reply's fault: it waits, unchanged, until the settings are fixed
            why = f"waiting: mail configuration fault: {e}"
            self._settle(reply_id, state=ReplyState.PENDING, reason=why)
            faults.raise_fault(self.db, faults.Fault.MAIL, f"{e}; replies stay pending")
            report.failed.append((msgid, why))
            report.fault = str(e)
            log.error("reply <%s> not sent: mail configuration fault: %s", msgid, e)
            return False
        except Exception as e:  # temporary: timeouts, 4xx, a crash of the transport
            whole_pass = not isinstance(e, MailTemporary) or e.whole_pass
            later = now + retry_delay(mail.retry_seconds, mail.retry_max_seconds, attempts + 1)
            why = f"send failed {attempts + 1} time(s); retry after {later:%H:%M:%S} UTC: {e}"
            self._settle(
                reply_id,
                state=ReplyState.PENDING,
                reason=why,
                not_before=later,
                attempts=attempts + 1,
            )
            report.failed.append((msgid, why))
            log.warning("reply <%s> not sent: %s", msgid, why)
            return not whole_pass
        reason = (
            "refused: " + ", ".join(f"{a} ({r})" for a, r in refused.items()) if refused else ""
        )
        if not self._settle(reply_id, state=ReplyState.SENT, sent_at=self.clock(), reason=reason):
            log.error("reply <%s> was sent, but its claim had been judged dead meanwhile", msgid)
        faults.clear_fault(self.db, faults.Fault.MAIL)
        report.sent.append(msgid)
        log.info("reply <%s> sent", msgid)
        return True

    def _settle(self, reply_id: int, **values: object) -> bool:
        with self.db.session() as s:
            return self._release(s, reply_id, **values)

    @staticmethod
    def _sent_last_hour(s: Session, author: str, now: datetime) -> tuple[int, int]:
        since = now - timedelta(hours=1)
        recent = (ReplyRow.state == ReplyState.SENT) & (ReplyRow.sent_at >= since)
        total = s.scalar(select(func.count()).select_from(ReplyRow).where(recent)) or 0
        mine = (
            s.scalar(
                select(func.count())
                .select_from(ReplyRow)
                .where(recent & (ReplyRow.author_email == author))
            )
            or 0
        )
        return total, mine


def retry_delay(first: int, most: int, attempt: int) -> timedelta:
    """The wait before retry `attempt` (1, 2, ...): `first` seconds, doubling, at most `most`."""
    return timedelta(seconds=min(most, first * 2 ** min(attempt - 1, 30)))


def recover_sending(db: Database, stale_after: timedelta) -> list[str]:
    """Give replies whose sender died while sending back to pending; their Message-IDs.

    The mail may have left before the crash: it is sent again with the same
    Message-ID (readers' clients fold the two), and the reason says so.
    """
    now = utcnow()
    with db.session() as s:
        dead = [
            (r.id, r.claimed_by, r.msgid)
            for r in s.scalars(select(ReplyRow).where(ReplyRow.state == ReplyState.SENDING))
            if not claims.claim_alive(r.claimed_by, r.claimed_at, r.heartbeat_at, now, stale_after)
        ]
    recovered = []
    for reply_id, holder, msgid in dead:
        with db.session() as s:
            result = s.execute(
                update(ReplyRow)
                .where(
                    ReplyRow.id == reply_id,
                    ReplyRow.state == ReplyState.SENDING,
                    ReplyRow.claimed_by == holder,
                )
                .values(
                    state=ReplyState.PENDING,
                    claimed_by="",
                    heartbeat_at=None,
                    reason=f"interrupted while sending by {holder}; it may have left, "
                    "and is sent again with the same Message-ID",
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                recovered.append(msgid)
                log.warning(
                    "reply <%s> interrupted while sending by %s: pending again", msgid, holder
                )
    return recovered


def _aware(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def _with_date(raw: str, now: datetime) -> str:
    """The stored message with its Date set to `now` (everything else byte for byte)."""
    head, sep, body = raw.partition("\r\n\r\n")
    head = _DATE.sub(f"Date: {format_datetime(_aware(now))}", head, count=1)
    return head + sep + body
