"""How fresh the service is: trees' syncs, cache sizes, and the lag from a series' last
patch reaching the inbox to its first result and first mail (page, JSON and /metrics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.states import RunState, SeriesState
from config.settings import Settings
from state.models import (
    CacheUsageRow,
    Message,
    ReplyRow,
    ReplyState,
    RunRow,
    SeriesRow,
    TreeSyncRow,
    utcnow,
)

#: Upper bounds (seconds) of the lag histogram's buckets.
LAG_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 21600, 86400)
#: Series still to be checked: the oldest of them is on the overview.
WAITING = (SeriesState.QUEUED, SeriesState.RUNNING, SeriesState.HELD)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.replace(microsecond=0).isoformat() + "Z"


def _age(now: datetime, t: datetime | None) -> int | None:
    return None if t is None else max(0, int((now - t).total_seconds()))


def tree_syncs(s: Session, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Each configured tree's last sync, last good sync and its age, and the last error."""
    rows = {r.tree: r for r in s.scalars(select(TreeSyncRow))}
    out = []
    for t in settings.trees:
        r = rows.get(t.name)
        out.append(
            {
                "tree": t.name,
                "synced": bool(t.url),  # an imported tree is never fetched
                "interval_seconds": t.sync_interval,
                "last_try": _iso(r.last_try_at) if r else None,
                "last_ok": _iso(r.last_ok_at) if r else None,
                "age_seconds": _age(now, r.last_ok_at) if r else None,
                "changed": _iso(r.changed_at) if r else None,
                "seconds": r.seconds if r else None,
                "error": r.error if r else "",
                "failures": r.failures if r else 0,
                "heads": dict(r.heads or {}) if r else {},
            }
        )
    return out


def cache_usage(s: Session) -> list[dict[str, Any]]:
    """The cache's sizes per kind, as the last gc measured them."""
    return [
        {"kind": r.kind, "bytes": r.bytes, "entries": r.entries, "measured": _iso(r.measured_at)}
        for r in s.scalars(select(CacheUsageRow).order_by(CacheUsageRow.kind))
    ]


def _arrivals(s: Session, series_ids: list[int] | None = None) -> dict[int, datetime]:
    """series id -> when its last message landed in the inbox (its commit's time; when
    lorebot took it in, for messages recorded before that was kept)."""
    q = (
        select(Message.series_id, func.max(func.coalesce(Message.landed_at, Message.recorded_at)))
        .where(Message.series_id.is_not(None))
        .group_by(Message.series_id)
    )
    if series_ids is not None:
        q = q.where(Message.series_id.in_(series_ids))
    return {sid: t for sid, t in s.execute(q) if sid is not None}


def _first_times(s: Session, series_id: int | None = None) -> dict[str, dict[int, datetime]]:
    """ "result": series id -> its first finished run; "mail": -> its first mail sent."""
    queries = {
        "result": select(RunRow.series_id, func.min(RunRow.finished_at)).where(
            RunRow.state == RunState.DONE
        ),
        "mail": select(ReplyRow.series_id, func.min(ReplyRow.sent_at)).where(
            ReplyRow.state == ReplyState.SENT
        ),
    }
    columns = {"result": RunRow.series_id, "mail": ReplyRow.series_id}
    out = {}
    for name, q in queries.items():
        if series_id is not None:
            q = q.where(columns[name] == series_id)
        rows = s.execute(q.group_by(columns[name]))
        out[name] = {sid: t for sid, t in rows if sid is not None and t is not None}
    return out


def _lag(arrival: datetime | None, t: datetime | None) -> float | None:
    if arrival is None or t is None:
        return None
    return max(0.0, round((t - arrival).total_seconds(), 1))


def series_lag(s: Session, row: SeriesRow) -> dict[str, Any]:
    """One series: when its last patch came in, and the seconds to its first result/mail."""
    arrival = _arrivals(s, [row.id]).get(row.id) or row.last_message_at
    firsts = _first_times(s, row.id)
    result, mail = firsts["result"].get(row.id), firsts["mail"].get(row.id)
    return {
        "arrived": _iso(arrival),
        "first_result": _iso(result),
        "first_mail": _iso(mail),
        "result_seconds": _lag(arrival, result),
        "mail_seconds": _lag(arrival, mail),
    }


def lags(s: Session) -> dict[str, list[float]]:
    """Every series' lag to its first result and to its first mail, in seconds."""
    rows = dict(s.execute(select(SeriesRow.id, SeriesRow.last_message_at)).all())
    arrivals = {**rows, **_arrivals(s)}
    out: dict[str, list[float]] = {"result": [], "mail": []}
    for name, firsts in _first_times(s).items():
        for sid, t in firsts.items():
            lag = _lag(arrivals.get(sid), t)
            if lag is not None:
                out[name].append(lag)
    return out


def oldest_waiting(s: Session, now: datetime) -> dict[str, Any] | None:
    """The series waiting longest for its first result (queued, running or held)."""
    row = s.scalars(
        select(SeriesRow)
        .where(SeriesRow.state.in_(WAITING))
        .order_by(SeriesRow.last_message_at, SeriesRow.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    arrival = _arrivals(s, [row.id]).get(row.id) or row.last_message_at
    return {
        "msgid": row.msgid,
        "subject": row.subject,
        "state": row.state,
        "reason": row.reason,
        "arrived": _iso(arrival),
        "waiting_seconds": _age(now, arrival),
    }


def overview(s: Session, settings: Settings) -> dict[str, Any]:
    """The overview's freshness part: trees, cache sizes, the oldest waiting series."""
    now = utcnow()
    return {
        "trees": tree_syncs(s, settings, now),
        "cache": cache_usage(s),
        "cache_quota_bytes": settings.cache.quota_bytes,
        "oldest_waiting": oldest_waiting(s, now),
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def freshness_metrics(s: Session) -> list[str]:
    """Prometheus lines: sync ages and failures, cache sizes, the lag histograms."""
    now = utcnow()
    rows = list(s.scalars(select(TreeSyncRow).order_by(TreeSyncRow.tree)))
    lines = [
        "# HELP lorebot_tree_sync_age_seconds Seconds since the tree's last good sync.",
        "# TYPE lorebot_tree_sync_age_seconds gauge",
    ]
    lines += [
        f'lorebot_tree_sync_age_seconds{{tree="{_label(r.tree)}"}} {_age(now, r.last_ok_at)}'
        for r in rows
        if r.last_ok_at is not None
    ]
    lines += [
        "# HELP lorebot_tree_sync_failures Failed syncs of the tree in a row.",
        "# TYPE lorebot_tree_sync_failures gauge",
    ]
    lines += [f'lorebot_tree_sync_failures{{tree="{_label(r.tree)}"}} {r.failures}' for r in rows]
    lines += [
        "# HELP lorebot_cache_bytes Bytes under the cache by kind (as the last gc measured).",
        "# TYPE lorebot_cache_bytes gauge",
    ]
    lines += [
        f'lorebot_cache_bytes{{kind="{_label(c["kind"])}"}} {c["bytes"]}' for c in cache_usage(s)
    ]
    oldest = oldest_waiting(s, now)
    lines += [
        "# HELP lorebot_oldest_waiting_seconds Age of the oldest series without a result.",
        "# TYPE lorebot_oldest_waiting_seconds gauge",
        f"lorebot_oldest_waiting_seconds {oldest['waiting_seconds'] if oldest else 0}",
        "# HELP lorebot_series_lag_seconds From a series' last patch taken in to its first "
        "result (to=result) and its first mail sent (to=mail).",
        "# TYPE lorebot_series_lag_seconds histogram",
    ]
    for to, values in lags(s).items():
        for bound in LAG_BUCKETS:
            n = sum(1 for v in values if v <= bound)
            lines.append(f'lorebot_series_lag_seconds_bucket{{to="{to}",le="{bound}"}} {n}')
        lines += [
            f'lorebot_series_lag_seconds_bucket{{to="{to}",le="+Inf"}} {len(values)}',
            f'lorebot_series_lag_seconds_sum{{to="{to}"}} {sum(values):.1f}',
            f'lorebot_series_lag_seconds_count{{to="{to}"}} {len(values)}',
        ]
    return lines
