"""The Prometheus text exposition of the database: series, findings, replies, polls, faults."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.states import SeriesState
from bot.run import faults
from bot.web import feedback
from bot.web.freshness import freshness_metrics
from bot.web.queries import counts_by_state, reply_counts
from state.models import FindingRow, PollRow, ReplyState, SeriesRow


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(s: Session) -> str:
    """The Prometheus text exposition of series, findings, replies, polls and queue."""
    lines = ["# HELP lorebot_series Series by state.", "# TYPE lorebot_series gauge"]
    for state, n in counts_by_state(s).items():
        lines.append(f'lorebot_series{{state="{_label(state)}"}} {n}')
    findings = s.scalar(select(func.count(FindingRow.id))) or 0
    lines += [
        "# HELP lorebot_findings_total Findings recorded by all runs.",
        "# TYPE lorebot_findings_total counter",
        f"lorebot_findings_total {findings}",
    ]
    lines += ["# HELP lorebot_replies Reply mails by state.", "# TYPE lorebot_replies gauge"]
    replies = reply_counts(s)
    for state in sorted(set(ReplyState) | set(replies)):
        lines.append(f'lorebot_replies{{state="{_label(state)}"}} {replies.get(state, 0)}')
    lines += [
        "# HELP lorebot_last_poll_timestamp_seconds Start of the last good poll per list.",
        "# TYPE lorebot_last_poll_timestamp_seconds gauge",
    ]
    q = (
        select(PollRow.list_name, func.max(PollRow.started_at))
        .where(PollRow.error == "")
        .group_by(PollRow.list_name)
        .order_by(PollRow.list_name)
    )
    for name, t in s.execute(q):
        ts = (t - datetime(1970, 1, 1)).total_seconds()
        lines.append(f'lorebot_last_poll_timestamp_seconds{{list="{_label(name)}"}} {ts:.0f}')
    errors = s.scalar(select(func.count(PollRow.id)).where(PollRow.error != "")) or 0
    lines += [
        "# HELP lorebot_poll_errors_total Polls that failed.",
        "# TYPE lorebot_poll_errors_total counter",
        f"lorebot_poll_errors_total {errors}",
    ]
    active = {f.name: f for f in faults.active(s)}
    lines += [
        "# HELP lorebot_fault A fault an operator must fix (1 while it lasts).",
        "# TYPE lorebot_fault gauge",
    ]
    for name in sorted(set(faults.Fault) | set(active)):
        lines.append(f'lorebot_fault{{name="{_label(name)}"}} {int(name in active)}')
    queued = (
        s.scalar(select(func.count(SeriesRow.id)).where(SeriesRow.state == SeriesState.QUEUED)) or 0
    )
    lines += [
        "# HELP lorebot_queue_length Series waiting for a worker.",
        "# TYPE lorebot_queue_length gauge",
        f"lorebot_queue_length {queued}",
    ]
    lines += freshness_metrics(s)
    lines += feedback.metrics_lines(s)
    return "\n".join(lines) + "\n"
