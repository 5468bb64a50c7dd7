"""The work queue: series in state "queued", claimed atomically by workers.

Several worker threads, and several `lorebot serve` processes on one
database, take series from the same table. A claim is a compare-and-set: an
UPDATE that only matches while the row is still "queued", so exactly one
claimer sees rowcount 1 for a given series; the others try the next one.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from state.db import Database
from state.models import RunRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.queue")

#: A series interrupted this many times (crash, kill -9) is given up as failed.
MAX_ATTEMPTS = 3
#: Final and waiting states a worker may release a series to.
RELEASE_STATES = frozenset(
    {"queued", "done", "failed", "incomplete", "skipped", "superseded", "waiting"}
)
#: A claim older than this is stale even if its pid exists (the pid was reused).
STALE_CLAIM = timedelta(hours=12)
_CLAIM_TRIES = 100


class QueueError(Exception):
    """A queue operation was asked for something the queue cannot do."""


def worker_name(index: int = 0) -> str:
    """A worker id unique across hosts and processes: host/pid/wN."""
    return f"{socket.gethostname()}/{os.getpid()}/w{index}"


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
                .where(SeriesRow.state == "queued")
                .order_by(SeriesRow.id)
                .limit(1)
            )
            if sid is None:
                return None
            result = s.execute(
                update(SeriesRow)
                .where(SeriesRow.id == sid, SeriesRow.state == "queued")
                .values(
                    state="running",
                    claimed_by=worker,
                    claimed_at=utcnow(),
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


def release(db: Database, series_id: int, state: str, reason: str = "") -> None:
    """Leave a claimed series in `state` (done, failed, queued to resume, ...)."""
    if state not in RELEASE_STATES:
        raise QueueError(f"cannot release a series to state {state!r}")
    with db.session() as s:
        s.execute(
            update(SeriesRow)
            .where(SeriesRow.id == series_id)
            .values(state=state, reason=reason, claimed_by="")
            .execution_options(synchronize_session=False)
        )
    log.info("released to %s", state, extra={"series_id": series_id})


def requeue(db: Database, series_id: int) -> bool:
    """Queue a series for a fresh run (re-run); False if it is running now or unknown."""
    with db.session() as s:
        result = s.execute(
            update(SeriesRow)
            .where(SeriesRow.id == series_id, SeriesRow.state != "running")
            .values(state="queued", reason="re-run requested", claimed_by="", attempts=0, step="")
            .execution_options(synchronize_session=False)
        )
        ok = getattr(result, "rowcount", 0) == 1
    if ok:
        log.info("requeued", extra={"series_id": series_id})
    return ok


def recover_interrupted(
    db: Database,
    max_attempts: int = MAX_ATTEMPTS,
    alive: Callable[[str], bool] | None = None,
    stale_after: timedelta = STALE_CLAIM,
) -> list[int]:
    """Put series left "running" by a dead worker back in the queue; their ids.

    Attempts are kept, so a series that keeps killing its worker fails after
    `max_attempts` claims instead of looping. A claim whose worker still
    lives (another process on this host) is left alone; `alive` decides, and
    a claim older than `stale_after` is dead whatever it says (a reused pid).
    Runs left "running" by the dead worker are closed as failed/interrupted.
    """
    is_alive = alive or claim_alive
    recovered: list[int] = []
    oldest = utcnow() - stale_after
    with db.session() as s:
        rows = s.scalars(select(SeriesRow).where(SeriesRow.state == "running")).all()
        for row in rows:
            fresh = row.claimed_at is None or row.claimed_at > oldest
            if row.claimed_by and fresh and is_alive(row.claimed_by):
                continue
            for run in s.scalars(
                select(RunRow).where(RunRow.series_id == row.id, RunRow.state == "running")
            ):
                run.state = "failed"
                run.error = run.error or "interrupted: the worker stopped during this run"
                run.finished_at = utcnow()
            if row.attempts >= max_attempts:
                row.state = "failed"
                row.reason = f"interrupted {row.attempts} times; given up"
                log.warning("given up after %d attempts", row.attempts,
                            extra={"msgid": row.msgid, "step": row.step})
            else:
                row.state = "queued"
                row.reason = f"resumed after interruption during step {row.step or '?'}"
                recovered.append(row.id)
                log.info("resumed", extra={"msgid": row.msgid, "step": row.step})
            row.claimed_by = ""
    return recovered


def claim_alive(claimed_by: str) -> bool:
    """Whether the worker named `claimed_by` (host/pid/wN) still runs.

    Only this process's own claims and live processes on this host count as
    alive-elsewhere; a claim by this very process at start-up is stale, and
    claims from other hosts cannot be checked, so they are treated as dead.
    """
    parts = claimed_by.split("/")
    if len(parts) < 2 or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
