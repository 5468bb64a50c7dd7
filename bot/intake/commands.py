"""`#lorebot <command>` lines in replies to lorebot's mail: parsed, recorded once, applied.

A reader answers one of our mails (In-Reply-To one of its Message-IDs) with a
line `#lorebot invalid <why>`, `#lorebot retest`, `#lorebot mute` or
`#lorebot unmute`. Intake records each command line with the message that
carries it (one transaction, so it is taken exactly once), then applies the
pending ones: a conditional update moves each out of "pending" before its
effect is written in the same transaction, so two pollers never apply one
twice. Who may command a series: its author, the people its reply went to
(To/Cc), and the configured admins; anyone else is recorded and ignored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from email.utils import getaddresses
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.core.states import CommandState, SeriesState
from config.settings import Settings
from state.db import Database
from state.models import CommandRow, MutedRow, ReplyRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.commands")

_COMMAND_RE = re.compile(r"^#lorebot(?:\s+(\S+)(?:\s+(.*))?)?\s*$", re.IGNORECASE)
_QUOTE_RE = re.compile(r"^\s*>")
KNOWN = ("invalid", "retest", "mute", "unmute")
MAX_COMMANDS = 20  # per mail: more is not a reader talking to us


@dataclass(frozen=True)
class ParsedCommand:
    """One `#lorebot` line: the command word, the rest of the line, the quote above it."""

    seq: int
    word: str
    argument: str
    quote: str


def parse_commands(body: str) -> list[ParsedCommand]:
    """The unquoted `#lorebot ...` lines of a mail body, each with the quoted block just
    above it (blank lines between are allowed); a signature ends the search."""
    out: list[ParsedCommand] = []
    lines = body.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip() == "--":
            break
        m = _COMMAND_RE.match(line.strip())
        if not m:
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        quoted: list[str] = []
        while j >= 0 and _QUOTE_RE.match(lines[j]):
            quoted.insert(0, re.sub(r"^(\s*>)+ ?", "", lines[j]))
            j -= 1
        word = (m.group(1) or "").lower()
        out.append(ParsedCommand(len(out), word, (m.group(2) or "").strip(), "\n".join(quoted)))
        if len(out) >= MAX_COMMANDS:
            break
    return out


def command_rows(
    list_name: str, msgid: str, in_reply_to: str, name: str, addr: str, body: str
) -> list[CommandRow]:
    """The rows to record for one new mail (none when it carries no command)."""
    if not in_reply_to or not msgid:
        return []
    return [
        CommandRow(
            msgid=msgid[:998],
            seq=c.seq,
            list_name=list_name,
            in_reply_to=in_reply_to[:998],
            sender=addr.lower()[:320],
            sender_name=name,
            command=c.word[:40],
            argument=c.argument,
            quote=c.quote,
            state=CommandState.PENDING,
        )
        for c in parse_commands(body)
    ]


def known_commands(s: Session, msgids: list[str]) -> set[str]:
    """Which of these mails' commands are recorded already (on any list)."""
    found: set[str] = set()
    for i in range(0, len(msgids), 500):
        chunk = msgids[i : i + 500]
        found.update(s.scalars(select(CommandRow.msgid).where(CommandRow.msgid.in_(chunk))))
    return found


def _norm(text: str) -> str:
    return " ".join(text.split())


def pick_items(items: list[dict[str, Any]], quote: str) -> list[dict[str, Any]]:
    """The items a command names by quoting them (those that match the quote best); every
    item of the mail when nothing it quotes is one of them."""
    q = _norm(quote)
    if not q or not items:
        return list(items)
    qlines = [_norm(line) for line in quote.splitlines() if len(_norm(line)) > 3]
    scores = []
    for it in items:
        text = _norm(str(it.get("text", "")))
        n = len(q) if q in text or (text and text in q) else 0
        scores.append(max(n, sum(len(line) for line in qlines if line in text)))
    best = max(scores)
    if not best:
        return list(items)
    return [it for it, n in zip(items, scores, strict=True) if n == best]


def _addresses(values: list[Any]) -> set[str]:
    return {a.lower() for _, a in getaddresses([str(v) for v in values]) if a}


def may_command(settings: Settings, sender: str, series: SeriesRow | None, reply: ReplyRow) -> bool:
    """The series' author, whoever its reply went to, or an admin."""
    allowed = _addresses([*reply.to_addrs, *reply.cc_addrs]) | {reply.author_email.lower()}
    allowed |= {a.lower() for a in settings.commands.admins}
    if series is not None and series.author_email:
        allowed.add(series.author_email.lower())
    return bool(sender) and sender.lower() in allowed


def apply_pending(settings: Settings, db: Database) -> dict[str, int]:
    """Apply every pending command once; the count per outcome ("applied"/"ignored")."""
    with db.session() as s:
        ids = list(
            s.scalars(
                select(CommandRow.id)
                .where(CommandRow.state == CommandState.PENDING)
                .order_by(CommandRow.id)
            )
        )
    counts: dict[str, int] = {}
    for cid in ids:
        try:
            with db.session() as s:
                state = _apply_one(settings, s, cid)
        except Exception:  # one odd command must not stop the poller
            log.exception("command %s could not be applied", cid)
            with db.session() as s:
                _settle(s, cid, CommandState.IGNORED, "internal error while applying it")
            state = CommandState.IGNORED
        if state:
            counts[state] = counts.get(state, 0) + 1
    return counts


def _settle(s: Session, cid: int, state: str, reason: str, **values: object) -> bool:
    """Move the command out of "pending" (False if another poller did first)."""
    result = s.execute(
        update(CommandRow)
        .where(CommandRow.id == cid, CommandRow.state == CommandState.PENDING)
        .values(state=state, reason=reason, applied_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def _apply_one(settings: Settings, s: Session, cid: int) -> str:
    cmd = s.get(CommandRow, cid)
    if cmd is None or cmd.state != CommandState.PENDING:
        return ""
    reply = s.scalars(select(ReplyRow).where(ReplyRow.msgid == cmd.in_reply_to)).first()
    if reply is None:
        return _ignore(s, cmd, "not a reply to a lorebot mail")
    series = s.get(SeriesRow, reply.series_id) if reply.series_id is not None else None
    where = {"series_id": series.id if series else None, "series_key": series.key if series else ""}
    if not settings.commands.enabled:
        return _ignore(s, cmd, "commands by mail are disabled here", **where)
    if not may_command(settings, cmd.sender, series, reply):
        why = f"{cmd.sender or 'the sender'} is not the author, in the To/Cc, or an admin"
        return _ignore(s, cmd, why, **where)
    if cmd.command == "invalid":
        items = pick_items(list(reply.items or []), cmd.quote)
        if not items:
            return _ignore(s, cmd, "that mail reports no item to mark", **where)
        prints = list(dict.fromkeys(p for it in items for p in it.get("fingerprints", [])))
        names = "; ".join(str(it.get("headline", "")) for it in items)
        why = f"marked invalid: {names}"
        return _apply(s, cmd, why, fingerprints=prints, **where)
    if cmd.command == "retest":
        return _retest(settings, s, cmd, series, where)
    if cmd.command == "mute":
        if s.get(MutedRow, cmd.sender) is None:
            s.add(MutedRow(address=cmd.sender, command_msgid=cmd.msgid))
        return _apply(s, cmd, f"{cmd.sender} is not mailed any more", **where)
    if cmd.command == "unmute":
        s.execute(delete(MutedRow).where(MutedRow.address == cmd.sender))
        return _apply(s, cmd, f"{cmd.sender} is mailed again", **where)
    known = ", ".join(KNOWN)
    return _ignore(s, cmd, f"unknown command {cmd.command!r} (known: {known})", **where)


def _ignore(s: Session, cmd: CommandRow, why: str, **values: object) -> str:
    if not _settle(s, cmd.id, CommandState.IGNORED, why, **values):
        s.rollback()
        return ""
    log.info("command <%s> #%d ignored: %s", cmd.msgid, cmd.seq, why)
    return CommandState.IGNORED


def _apply(s: Session, cmd: CommandRow, why: str, **values: object) -> str:
    if not _settle(s, cmd.id, CommandState.APPLIED, why, **values):
        s.rollback()  # another poller took it: its effect is theirs to write
        return ""
    log.info("command <%s> #%d applied: %s", cmd.msgid, cmd.seq, why)
    return CommandState.APPLIED


def _retest(
    settings: Settings,
    s: Session,
    cmd: CommandRow,
    series: SeriesRow | None,
    where: dict[str, Any],
) -> str:
    if series is None:
        return _ignore(s, cmd, "that mail belongs to no series", **where)
    if series.superseded_by is not None or series.state == SeriesState.SUPERSEDED:
        return _ignore(s, cmd, "the series was superseded by a new revision", **where)
    since = utcnow() - timedelta(seconds=settings.commands.retest_interval)
    recent = s.scalar(
        select(CommandRow.id).where(
            CommandRow.series_id == series.id,
            CommandRow.command == "retest",
            CommandRow.state == CommandState.APPLIED,
            CommandRow.applied_at >= since,
        )
    )
    if recent is not None:
        why = f"rate limit: re-tested less than {settings.commands.retest_interval} s ago"
        return _ignore(s, cmd, why, **where)
    if series.state in (SeriesState.RUNNING, SeriesState.QUEUED):
        return _ignore(s, cmd, f"the series is {series.state} already", **where)
    if not _settle(s, cmd.id, CommandState.APPLIED, "queued again", **where):
        s.rollback()
        return ""
    s.execute(
        update(SeriesRow)
        .where(SeriesRow.id == series.id, SeriesRow.state == series.state)
        .values(
            state=SeriesState.QUEUED,
            reason=f"re-test asked by {cmd.sender}",
            claimed_by="",
            attempts=0,
            step="",
        )
        .execution_options(synchronize_session=False)
    )
    log.info("command <%s>: series %s queued again", cmd.msgid, series.id)
    return CommandState.APPLIED


def invalidated(s: Session, series: SeriesRow) -> dict[str, CommandRow]:
    """fingerprint -> the `invalid` command that marked it, for this series and every
    revision of it (same revision family)."""
    q = select(CommandRow).where(
        CommandRow.command == "invalid", CommandRow.state == CommandState.APPLIED
    )
    if series.key:
        q = q.where((CommandRow.series_key == series.key) | (CommandRow.series_id == series.id))
    else:
        q = q.where(CommandRow.series_id == series.id)
    out: dict[str, CommandRow] = {}
    for cmd in s.scalars(q.order_by(CommandRow.id)):
        for fp in cmd.fingerprints or []:
            out.setdefault(str(fp), cmd)
    return out


def invalid_fingerprints(db: Database, series_id: int) -> set[str]:
    """The fingerprints readers marked invalid for this series or its other revisions."""
    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        return set(invalidated(s, row)) if row is not None else set()


def muted(s: Session, addresses: list[str]) -> set[str]:
    """Which of these addresses asked not to be mailed."""
    low = [a.lower() for a in addresses if a]
    if not low:
        return set()
    return set(s.scalars(select(MutedRow.address).where(MutedRow.address.in_(low))))
