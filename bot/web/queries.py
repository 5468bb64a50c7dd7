"""Read the database for the status pages and the JSON API: plain dicts, JSON-ready."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot.core.results import severity_rank
from bot.core.states import SeriesState
from bot.intake.target import bare_msgid
from bot.run import faults
from bot.web import freshness
from state.models import (
    FindingRow,
    PatchRow,
    PollRow,
    ReplyRow,
    RunRow,
    SeriesRow,
    utcnow,
)

#: Every series state, in pipeline order, for the counts and the filter menu.
STATES = tuple(SeriesState)


class WorkerSource(Protocol):
    """The in-memory worker view of a running service (bot.service.WorkerBoard)."""

    def snapshot(self) -> list[dict[str, Any]]: ...


def iso(t: datetime | None) -> str | None:
    """Naive-UTC database time as ISO 8601 with a Z, or None."""
    return None if t is None else t.replace(microsecond=0).isoformat() + "Z"


def clean_msgid(msgid: str) -> str:
    """A Message-ID as stored: without angle brackets or surrounding blanks (a lore URL
    is taken for the Message-ID it names)."""
    if msgid.strip().lower().startswith(("http://", "https://", "http:/", "https:/")):
        return bare_msgid(re.sub(r"^(https?):/(?!/)", r"\1://", msgid.strip(), flags=re.I))
    return msgid.strip().removeprefix("<").removesuffix(">")


def latest_run_ids(s: Session, series_ids: list[int] | None = None) -> dict[int, int]:
    """series id -> id of its newest run."""
    q = select(RunRow.series_id, func.max(RunRow.id)).group_by(RunRow.series_id)
    if series_ids is not None:
        q = q.where(RunRow.series_id.in_(series_ids))
    return {sid: rid for sid, rid in s.execute(q)}


def finding_counts(s: Session, run_ids: list[int]) -> dict[int, int]:
    """run id -> number of findings."""
    if not run_ids:
        return {}
    q = (
        select(FindingRow.run_id, func.count(FindingRow.id))
        .where(FindingRow.run_id.in_(run_ids))
        .group_by(FindingRow.run_id)
    )
    return {rid: n for rid, n in s.execute(q)}


def list_series(
    s: Session,
    state: str = "",
    list_name: str = "",
    author: str = "",
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Series, newest first, filtered; each with the findings count of its latest run."""
    q = select(SeriesRow).order_by(SeriesRow.id.desc()).limit(limit).offset(offset)
    if state:
        q = q.where(SeriesRow.state == state)
    if list_name:
        q = q.where(SeriesRow.list_name == list_name)
    if author:
        like = f"%{author}%"
        q = q.where(or_(SeriesRow.author.ilike(like), SeriesRow.author_email.ilike(like)))
    rows = s.scalars(q).all()
    latest = latest_run_ids(s, [r.id for r in rows])
    counts = finding_counts(s, list(latest.values()))
    return [
        {
            "msgid": r.msgid,
            "subject": r.subject,
            "version": r.version,
            "state": r.state,
            "findings": counts.get(latest.get(r.id, -1), 0),
            "list": r.list_name,
            "author": r.author or r.author_email,
            "step": r.step,
            "updated_at": iso(r.updated_at),
        }
        for r in rows
    ]


def find_series(s: Session, msgid: str, list_name: str = "") -> SeriesRow | None:
    """The series with this Message-ID (on `list_name` when given; else the newest)."""
    q = select(SeriesRow).where(SeriesRow.msgid == clean_msgid(msgid))
    if list_name:
        q = q.where(SeriesRow.list_name == list_name)
    found = s.scalars(q.order_by(SeriesRow.id.desc()).limit(1)).first()
    if found is None:  # a patch's Message-ID names its series too
        q = select(SeriesRow).join(PatchRow).where(PatchRow.msgid == clean_msgid(msgid))
        if list_name:
            q = q.where(SeriesRow.list_name == list_name)
        found = s.scalars(q.order_by(SeriesRow.id.desc()).limit(1)).first()
    return found


def _finding(f: FindingRow) -> dict[str, Any]:
    data = dict(f.data or {})
    data.setdefault("check", f.check)
    data.setdefault("kind", f.kind)
    data.setdefault("severity", f.severity)
    data.setdefault("patch", f.patch_index)
    data.setdefault("file", f.file)
    data.setdefault("line", f.line)
    data.setdefault("message", f.message)
    data["id"] = f.id
    data["fingerprint"] = f.fingerprint
    return data


def _check_status(value: Any) -> dict[str, Any]:
    """A RunRow.checks entry (a status word or a dict) as {"status": ..., "notes": ...}."""
    if isinstance(value, dict):
        notes = {k: v for k, v in value.items() if k != "status"}
        return {"status": str(value.get("status", "")), "notes": notes}
    # the pipeline writes "ok: 3 finding(s)" or "error: ValueError: ..."
    word, sep, rest = str(value).partition(":")
    if sep and word.strip() and " " not in word.strip():
        return {"status": word.strip(), "notes": {"detail": rest.strip()}}
    return {"status": str(value), "notes": {}}


def _run(r: RunRow) -> dict[str, Any]:
    elapsed = None
    if r.finished_at and r.started_at:
        elapsed = round((r.finished_at - r.started_at).total_seconds(), 1)
    return {
        "id": r.id,
        "state": r.state,
        "step": r.step,
        "worker": r.worker,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "seconds": elapsed,
        "tree": r.tree,
        "branch": r.branch,
        "base_sha": r.base_sha,
        "apply_ok": r.apply_ok,
        "failed_patch": r.failed_patch,
        "message": r.message,
        "error": r.error,
        "tried": list(r.tried or []),
        "patch_commits": list(r.patch_commits or []),
        "timings": dict(r.timings or {}),
        "checks": {k: _check_status(v) for k, v in (r.checks or {}).items()},
        "log_dir": r.log_dir,
        "findings": [_finding(f) for f in r.findings],
        "notes": list(r.notes or []),
        "variants": list((r.plan or {}).get("variants", [])),
        "variants_dropped": list((r.plan or {}).get("dropped", [])),
        "suites": list((r.plan or {}).get("suites", [])),
        "coverage": (r.plan or {}).get("coverage"),
    }


def patch_matrix(patches: list[dict[str, Any]], run: dict[str, Any] | None) -> dict[str, Any]:
    """Per patch, per check: "ok", the number of findings, or the check's status word."""
    if run is None:
        return {"checks": [], "rows": []}
    checks = list(run["checks"])
    for f in run["findings"]:
        if f["check"] not in checks:
            checks.append(f["check"])
    rows = []
    for p in patches:
        cells = {}
        for c in checks:
            n = sum(1 for f in run["findings"] if f["check"] == c and f["patch"] == p["index"])
            status = run["checks"].get(c, {}).get("status", "")
            cells[c] = n if n else ("ok" if status in ("", "ok", "done", "pass") else status)
        rows.append({"patch": p, "cells": cells})
    return {"checks": checks, "rows": rows}


def series_detail(s: Session, row: SeriesRow) -> dict[str, Any]:
    """Everything about one series: patches, runs with checks and findings, replies."""
    patches = [
        {
            "index": p.idx,
            "msgid": p.msgid,
            "subject": p.subject,
            "author": p.author,
            "trailers": list(p.trailers or []),
        }
        for p in s.scalars(
            select(PatchRow).where(PatchRow.series_id == row.id).order_by(PatchRow.idx)
        )
    ]
    runs = [
        _run(r)
        for r in s.scalars(
            select(RunRow).where(RunRow.series_id == row.id).order_by(RunRow.id.desc())
        )
    ]
    replies = [
        {
            "msgid": r.msgid,
            "state": r.state,
            "subject": r.subject,
            "reason": r.reason,
            "to": list(r.to_addrs or []),
            "cc": list(r.cc_addrs or []),
            "run_id": r.run_id,
            "created_at": iso(r.created_at),
            "sent_at": iso(r.sent_at),
            "raw": r.raw,
        }
        for r in s.scalars(
            select(ReplyRow).where(ReplyRow.series_id == row.id).order_by(ReplyRow.id)
        )
    ]
    latest = runs[0] if runs else None
    findings = sorted(
        latest["findings"] if latest else [],
        key=lambda f: (f["patch"] or 0, severity_rank(f["severity"])),
    )
    related = {}
    for name, sid in (("parent", row.parent_id), ("superseded_by", row.superseded_by)):
        other = s.get(SeriesRow, sid) if sid else None
        related[name] = other.msgid if other else None
    return {
        "msgid": row.msgid,
        "list": row.list_name,
        "subject": row.subject,
        "version": row.version,
        "total": row.total,
        "author": row.author,
        "author_email": row.author_email,
        "state": row.state,
        "step": row.step,
        "reason": row.reason,
        "complete": row.complete,
        "has_cover": row.has_cover,
        "base_commit": row.base_commit,
        "attempts": row.attempts,
        "claimed_by": row.claimed_by,
        "claimed_at": iso(row.claimed_at),
        "first_seen": iso(row.first_seen),
        "updated_at": iso(row.updated_at),
        "thread_msgid": row.thread_msgid,
        **related,
        "findings": findings,
        "patches": patches,
        "runs": runs,
        "replies": replies,
        "matrix": patch_matrix(patches, latest),
        "lag": freshness.series_lag(s, row),
    }


def poll_health(s: Session, now: datetime) -> list[dict[str, Any]]:
    """Per list: the last poll, the last good poll, the lag since it, recent errors."""
    out = []
    day_ago = now - timedelta(days=1)
    names = s.scalars(select(PollRow.list_name).distinct().order_by(PollRow.list_name)).all()
    for name in names:
        last = s.scalars(
            select(PollRow).where(PollRow.list_name == name).order_by(PollRow.id.desc()).limit(1)
        ).first()
        good = s.scalar(
            select(func.max(PollRow.started_at)).where(
                PollRow.list_name == name, PollRow.error == ""
            )
        )
        errors = (
            s.scalar(
                select(func.count(PollRow.id)).where(
                    PollRow.list_name == name, PollRow.error != "", PollRow.started_at >= day_ago
                )
            )
            or 0
        )
        assert last is not None
        out.append(
            {
                "list": name,
                "last_poll": iso(last.started_at),
                "seconds": round(last.seconds, 2),
                "new_messages": last.new_messages,
                "error": last.error,
                "last_success": iso(good),
                "lag_seconds": None if good is None else max(0, int((now - good).total_seconds())),
                "errors_24h": errors,
            }
        )
    return out


def running(
    s: Session, now: datetime, service_state: WorkerSource | None = None
) -> list[dict[str, Any]]:
    """The workers: series running in any process (DB), plus idle ones of this process."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in s.scalars(
        select(SeriesRow)
        .where(SeriesRow.state == SeriesState.RUNNING)
        .order_by(SeriesRow.claimed_at)
    ):
        since = row.claimed_at
        out.append(
            {
                "worker": row.claimed_by,
                "msgid": row.msgid,
                "subject": row.subject,
                "step": row.step,
                "started": iso(since),
                "elapsed_seconds": int((now - since).total_seconds()) if since else None,
            }
        )
        seen.add(row.claimed_by)
    for w in service_state.snapshot() if service_state else []:
        if w["name"] not in seen and w.get("series_id") is None:
            out.append(
                {
                    "worker": w["name"],
                    "msgid": "",
                    "subject": "",
                    "step": "idle",
                    "started": None,
                    "elapsed_seconds": None,
                }
            )
    return out


def counts_by_state(s: Session, since: datetime | None = None) -> dict[str, int]:
    """Number of series per state (touched since `since`, when given)."""
    q = select(SeriesRow.state, func.count(SeriesRow.id)).group_by(SeriesRow.state)
    if since is not None:
        q = q.where(SeriesRow.updated_at >= since)
    got = {state: n for state, n in s.execute(q)}
    return {st: got.pop(st, 0) for st in STATES} | got


def reply_counts(s: Session) -> dict[str, int]:
    """Number of reply mails per state."""
    q = select(ReplyRow.state, func.count(ReplyRow.id)).group_by(ReplyRow.state)
    return {state: n for state, n in s.execute(q)}


def overview(s: Session, service_state: WorkerSource | None = None) -> dict[str, Any]:
    """The status page: poller health, queue, workers, today's and all-time counts."""
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = counts_by_state(s, midnight)
    return {
        "now": iso(now),
        "polls": poll_health(s, now),
        "queue_length": s.scalar(
            select(func.count(SeriesRow.id)).where(SeriesRow.state == SeriesState.QUEUED)
        )
        or 0,
        "workers": running(s, now, service_state),
        "today": today,
        "total": counts_by_state(s),
        "replies": reply_counts(s),
        "faults": [
            {"name": f.name, "message": f.message, "since": iso(f.since)} for f in faults.active(s)
        ],
    }
