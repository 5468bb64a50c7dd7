"""The work queue: series in state "queued", claimed atomically by workers.

Several worker threads, and several `lorebot serve` processes on one
database, take series from the same table. A claim is a compare-and-set: an
UPDATE that only matches while the row is still "queued", so exactly one
claimer sees rowcount 1 for a given series; the others try the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.states import RunState, SeriesState
from bot.run import claims
from state.db import Database
from state.models import RunRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.queue")

#: A series interrupted this many times (crash, kill -9) is given up as failed.
MAX_ATTEMPTS = 3
#: Final and waiting states a worker may release a series to.
RELEASE_STATES = frozenset(SeriesState) - {SeriesState.RUNNING}
#: A claim from another host whose heartbeat is older than this is dead.
STALE_CLAIM = timedelta(seconds=120)
_CLAIM_TRIES = 100


class QueueError(Exception):
    """A queue operation was asked for something the queue cannot do."""


def worker_name(index: int = 0) -> str:
    """A worker id unique across hosts and processes: host/pid/wN."""
    return claims.holder_name(f"w{index}")


def claim_next(db: Database, worker: str) -> int | None:
    """Take the oldest queued series for `worker`; its id, or None if the queue is empty.

    Marks it "running" with claimed_by/claimed_at and one more attempt. Safe
    across threads and processes: the UPDATE only wins while state is "queued".
    """
    for _ in range(_CLAIM_TRIES):
        with db.session() as s:
            # the read is outside any write lock; the CAS below decides who wins
            sid = s.scalar(
                select(SeriesRow.id)
                .where(SeriesRow.state == SeriesState.QUEUED)
                .order_by(SeriesRow.id)
                .limit(1)
            )
            if sid is None:
                return None
            result = s.execute(
                update(SeriesRow)
                .where(SeriesRow.id == sid, SeriesRow.state == SeriesState.QUEUED)
                .values(
                    state=SeriesState.RUNNING,
                    claimed_by=worker,
                    claimed_at=utcnow(),
                    heartbeat_at=utcnow(),
                    attempts=SeriesRow.attempts + 1,
                    step="",
                    reason="",
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) == 1:
                log.info("claimed", extra={"series_id": sid, "worker": worker})
                return sid
        # someone else took it between our read and our write: try the next one
    log.warning("gave up claiming after %d collisions", _CLAIM_TRIES, extra={"worker": worker})
    return None


def claim(db: Database, series_id: int, worker: str) -> bool:
    """Claim one given series for `worker` (a foreground check) unless somebody runs it now;
    whether the claim was won. The same compare-and-set as `claim_next`."""
    now = utcnow()
    with db.session() as s:
        result = s.execute(
            update(SeriesRow)
            .where(SeriesRow.id == series_id, SeriesRow.state != SeriesState.RUNNING)
            .values(
                state=SeriesState.RUNNING,
                claimed_by=worker,
                claimed_at=now,
                heartbeat_at=now,
                attempts=SeriesRow.attempts + 1,
                step="",
                reason="",
            )
            .execution_options(synchronize_session=False)
        )
        won = getattr(result, "rowcount", 0) == 1
    if won:
        log.info("claimed", extra={"series_id": series_id, "worker": worker})
    return won


def holder(db: Database, series_id: int) -> str:
    """Who holds the series' claim ("" when nobody)."""
    with db.session() as s:
        return s.scalar(select(SeriesRow.claimed_by).where(SeriesRow.id == series_id)) or ""


def reason(db: Database, series_id: int) -> str:
    """The series' recorded reason (why it failed, was held, ...)."""
    with db.session() as s:
        return s.scalar(select(SeriesRow.reason).where(SeriesRow.id == series_id)) or ""


def release(db: Database, series_id: int, state: str, reason: str = "") -> None:
    """Leave a claimed series in `state` (done, failed, queued to resume, ...)."""
    if state not in RELEASE_STATES:
        raise QueueError(f"cannot release a series to state {state!r}")
    with db.session() as s:
        s.execute(
            update(SeriesRow)
            .where(SeriesRow.id == series_id)
            .values(state=state, reason=reason, claimed_by="", heartbeat_at=None)
            .execution_options(synchronize_session=False)
        )
        _close_runs(s, series_id, _run_end(state), reason)
    log.info("released to %s", state, extra={"series_id": series_id})


def _run_end(state: str) -> RunState:
    """How the open runs of a series released to `state` end."""
    return RunState.INTERRUPTED if state == SeriesState.QUEUED else RunState.FAILED


def _close_runs(s: Session, series_id: int, state: str, reason: str) -> None:
    """No run of a series that is not running can be running: close what was left open."""
    for run in s.scalars(
        select(RunRow).where(RunRow.series_id == series_id, RunRow.state == RunState.RUNNING)
    ):
        run.state = state
        run.error = run.error or reason
        run.finished_at = utcnow()


def give_back(
    db: Database,
    series_id: int,
    worker: str,
    error: Exception,
    *,
    ours: bool,
    max_attempts: int = MAX_ATTEMPTS,
) -> str:
    """Leave a series whose run raised `error`; the state it was left in.

    A fault of ours (`ours`: the database was out) requeues it with the
    reason, up to `max_attempts` claims; anything else fails it. Only while
    `worker` still holds it: a claim taken back meanwhile is left alone.
    """
    what = "database unavailable" if ours else "internal error"
    reason = f"{what}: {type(error).__name__}: {error}".splitlines()[0]
    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        if row is None or row.state != SeriesState.RUNNING or row.claimed_by != worker:
            return row.state if row else ""
        state = SeriesState.QUEUED if ours and row.attempts < max_attempts else SeriesState.FAILED
        if state == SeriesState.FAILED and ours:
            reason = f"{reason} ({row.attempts} attempts; given up)"
        row.state, row.reason, row.claimed_by, row.heartbeat_at = state, reason, "", None
        _close_runs(s, series_id, _run_end(state), reason)
    log.info("given back as %s: %s", state, reason, extra={"series_id": series_id})
    return state


def requeue(db: Database, series_id: int) -> bool:
    """Queue a series for a fresh run (re-run); False if it is running now or unknown."""
    with db.session() as s:
        result = s.execute(
            update(SeriesRow)
            .where(SeriesRow.id == series_id, SeriesRow.state != SeriesState.RUNNING)
            .values(
                state=SeriesState.QUEUED,
                reason="re-run requested",
                claimed_by="",
                attempts=0,
                step="",
            )
            .execution_options(synchronize_session=False)
        )
        ok = getattr(result, "rowcount", 0) == 1
    if ok:
        log.info("requeued", extra={"series_id": series_id})
    return ok


def retry_held(db: Database, now: datetime | None = None) -> list[int]:
    """Queue again the series held for a fault of ours whose retry time has come."""
    now = now or utcnow()
    with db.session() as s:
        due = list(
            s.scalars(
                select(SeriesRow.id).where(
                    SeriesRow.state == SeriesState.HELD, SeriesRow.retry_at <= now
                )
            )
        )
        for sid in due:
            s.execute(
                update(SeriesRow)
                .where(SeriesRow.id == sid, SeriesRow.state == SeriesState.HELD)
                .values(state=SeriesState.QUEUED, attempts=0)
                .execution_options(synchronize_session=False)
            )
    for sid in due:
        log.info("retrying a held series", extra={"series_id": sid})
    return due


def recover_interrupted(
    db: Database,
    max_attempts: int = MAX_ATTEMPTS,
    alive: Callable[[SeriesRow], bool] | None = None,
    stale_after: timedelta = STALE_CLAIM,
) -> list[int]:
    """Put series left "running" by a dead worker back in the queue; their ids.

    Attempts are kept, so a series that keeps killing its worker fails after
    `max_attempts` claims instead of looping. A claim whose holder still
    lives is left alone: `alive` decides, by default bot.claims' rules (the
    holder's pid on this host, its heartbeat within `stale_after` elsewhere).
    Runs left "running" by the dead worker are closed as failed/interrupted.
    Safe while other workers run: each row is given back with a compare-and-set
    on the claim that was judged dead.
    """
    now = utcnow()

    def default_alive(row: SeriesRow) -> bool:
        return claims.claim_alive(
            row.claimed_by, row.claimed_at, row.heartbeat_at, now, stale_after
        )

    is_alive = alive or default_alive
    with db.session() as s:
        dead = [
            (row.id, row.claimed_by, row.attempts, row.step, row.msgid)
            for row in s.scalars(select(SeriesRow).where(SeriesRow.state == SeriesState.RUNNING))
            if not is_alive(row)
        ]
    recovered: list[int] = []
    for sid, claimed_by, attempts, step, msgid in dead:
        if attempts >= max_attempts:
            state, reason = SeriesState.FAILED, f"interrupted {attempts} times; given up"
        else:
            state = SeriesState.QUEUED
            reason = f"resumed after interruption during step {step or '?'}"
        with db.session() as s:
            result = s.execute(
                update(SeriesRow)
                .where(
                    SeriesRow.id == sid,
                    SeriesRow.state == SeriesState.RUNNING,
                    SeriesRow.claimed_by == claimed_by,
                )
                .values(state=state, reason=reason, claimed_by="", heartbeat_at=None)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                continue  # finished or reclaimed meanwhile: not ours to touch
            for run in s.scalars(
                select(RunRow).where(RunRow.series_id == sid, RunRow.state == RunState.RUNNING)
            ):
                run.state = RunState.FAILED
                run.error = run.error or "interrupted: the worker stopped during this run"
                run.finished_at = utcnow()
        if state == SeriesState.FAILED:
            log.warning(
                "given up after %d attempts", attempts, extra={"msgid": msgid, "step": step}
            )
        else:
            recovered.append(sid)
            log.info("resumed", extra={"msgid": msgid, "step": step})
    return recovered
