"""What readers said by mail (`#lorebot` commands) for the pages, the JSON and /metrics."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.core.states import CommandState
from bot.intake.commands import invalidated
from bot.web.queries import iso
from state.models import CommandRow, SeriesRow


def _who(c: CommandRow) -> str:
    return f"{c.sender_name} <{c.sender}>" if c.sender_name else c.sender


def command_json(c: CommandRow) -> dict[str, Any]:
    return {
        "msgid": c.msgid,
        "seq": c.seq,
        "list": c.list_name,
        "in_reply_to": c.in_reply_to,
        "from": _who(c),
        "command": c.command,
        "argument": c.argument,
        "state": c.state,
        "reason": c.reason,
        "fingerprints": list(c.fingerprints or []),
        "received_at": iso(c.received_at),
        "applied_at": iso(c.applied_at),
    }


def annotate(s: Session, row: SeriesRow, detail: dict[str, Any]) -> dict[str, Any]:
    """The series' commands, and each finding a reader marked invalid (why, who)."""
    mine = CommandRow.series_id == row.id
    q = select(CommandRow).where(or_(mine, CommandRow.series_key == row.key) if row.key else mine)
    detail["commands"] = [command_json(c) for c in s.scalars(q.order_by(CommandRow.id))]
    marks = invalidated(s, row)
    for run in detail.get("runs", []):
        for f in run.get("findings", []):
            c = marks.get(f.get("fingerprint", ""))
            f["invalid"] = (
                {"reason": c.argument, "by": _who(c), "msgid": c.msgid, "at": iso(c.applied_at)}
                if c is not None
                else None
            )
    return detail


def metrics_lines(s: Session) -> list[str]:
    """Commands taken in, by command and outcome (unknown words are counted as "other")."""
    lines = [
        "# HELP lorebot_commands_total #lorebot commands taken from replies, by outcome.",
        "# TYPE lorebot_commands_total counter",
    ]
    q = select(CommandRow.command, CommandRow.state, func.count(CommandRow.id)).group_by(
        CommandRow.command, CommandRow.state
    )
    counts: dict[tuple[str, str], int] = {}
    for command, state, n in s.execute(q):
        key = (command if command in ("invalid", "retest", "mute", "unmute") else "other", state)
        counts[key] = counts.get(key, 0) + n
    for cmd in ("invalid", "retest", "mute", "unmute", "other"):
        for state in CommandState:
            lines.append(
                f'lorebot_commands_total{{command="{cmd}",state="{state}"}} '
                f"{counts.get((cmd, state), 0)}"
            )
    return lines
