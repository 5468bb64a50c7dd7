"""Record new inbox mail once: one Message row per Message-ID, a kind and a reason.

A mail over the read limit is recorded from its headers only; a patch sent
on its own that is too big also gets a series row that says so.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from email.utils import parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.intake import lore
from bot.intake.commands import command_rows, known_commands
from bot.intake.mailparse import ParsedMessage, classify, parse_message, parse_subject
from bot.intake.series_rows import SERIES_KINDS, refuse_series, retry_race
from config.settings import ListSettings, Settings
from state.db import Database
from state.models import CommandRow, Message

log = logging.getLogger("lorebot.intake")


def record_messages(
    settings: Settings, db: Database, lst: ListSettings, mails: Iterable[lore.InboxMail]
) -> Counter[str]:
    """Record the mails not seen before (by Message-ID) in one transaction; count kinds."""
    rows: dict[str, Message] = {}
    refused: list[ParsedMessage] = []
    commands: dict[str, list[CommandRow]] = {}  # `#lorebot` lines, taken with their mail
    # the bot's own mail is recognised by X-Lorebot, and by its sender address
    bots = [*settings.intake.bot_senders, parseaddr(settings.mail.sender)[1]]
    for mail in mails:
        try:
            parsed = parse_message(mail.raw, settings.intake.max_message_bytes, mail.size)
            kind = classify(parsed, bots)
        except Exception as e:  # a parser bug must not stop the poller
            log.exception("cannot parse message %s of %s", mail.commit, lst.name)
            rows.setdefault(
                f"unparsed-{mail.blob}",
                Message(
                    list_name=lst.name,
                    msgid=f"unparsed-{mail.blob}",
                    epoch=mail.epoch,
                    blob_commit=mail.commit,
                    kind="malformed",
                    reason=f"parser error: {e}",
                ),
            )
            continue
        # no Message-ID: key it by blob so a re-read after a rewrite stays one row
        msgid = parsed.msgid or f"no-message-id-{mail.blob}"
        if msgid in rows:
            continue
        rows[msgid] = Message(
            list_name=lst.name,
            msgid=msgid[:998],
            epoch=mail.epoch,
            blob_commit=mail.commit,
            landed_at=mail.landed_at,
            subject=parsed.subject,
            author=parsed.author,
            date=parsed.date,
            in_reply_to=parsed.in_reply_to,
            kind=kind.kind,
            # for series mail, `reason` is kept for why no series could be made
            reason="" if kind.kind in SERIES_KINDS else kind.reason,
        )
        if parsed.oversize and _lone_patch(parsed):
            refused.append(parsed)
        if kind.kind != "robot" and "#lorebot" in parsed.body.lower():
            commands[msgid] = command_rows(
                lst.name,
                msgid,
                parsed.in_reply_to,
                parsed.author_name,
                parsed.author_email,
                parsed.body,
            )
    if not rows:
        return Counter()

    def store(s: Session) -> Counter[str]:
        counts: Counter[str] = Counter()
        seen = _existing(s, lst.name, list(rows))
        for msgid, row in rows.items():
            if msgid not in seen:
                # a fresh copy: a try lost to another poll leaves the first one spent
                s.add(_copy_message(row))
                counts[row.kind] += 1
                if row.kind == "malformed":
                    log.warning("%s: malformed message <%s>: %s", lst.name, msgid, row.reason)
        s.flush()
        taken = known_commands(s, [m for m in commands if m not in seen])
        for msgid, cmds in commands.items():
            if msgid not in seen and msgid not in taken:  # the same mail on two lists: once
                for c in cmds:
                    s.add(_copy_command(c))
        for p in refused:
            # a patch too big to read makes a series row that says so (b4 never sees it)
            refuse_series(s, lst, p.msgid, p.malformed, subject=p.subject, author=p.author)
        return counts

    return retry_race(db, store)


def _lone_patch(p: ParsedMessage) -> bool:
    """A patch sent on its own (no thread to find its series in)."""
    info = parse_subject(p.subject)
    return bool(p.msgid) and info.is_patch and not info.is_reply and not p.in_reply_to


def _copy_command(row: CommandRow) -> CommandRow:
    return CommandRow(**{f: getattr(row, f) for f in _COMMAND_FIELDS})


_COMMAND_FIELDS = (
    *("msgid", "seq", "list_name", "in_reply_to", "sender", "sender_name", "command"),
    *("argument", "quote", "state"),
)


def _copy_message(row: Message) -> Message:
    return Message(**{f: getattr(row, f) for f in _MESSAGE_FIELDS})


_MESSAGE_FIELDS = (
    *("list_name", "msgid", "epoch", "blob_commit", "subject", "author", "date"),
    *("in_reply_to", "kind", "reason", "landed_at"),
)


def _existing(s: Session, list_name: str, msgids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(msgids), 500):
        chunk = msgids[i : i + 500]
        found.update(
            s.scalars(
                select(Message.msgid).where(
                    Message.list_name == list_name, Message.msgid.in_(chunk)
                )
            )
        )
    return found
