"""The worker threads of `lorebot serve`: each claims a queued series and runs the pipeline.

A worker guards its unit of work: a run that raises gives its series back
with the reason (requeued for a database outage, failed otherwise) and the
loop goes on; a thread that dies anyway is restarted by `supervise()`, which
the service's upkeep job calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select

from bot.core.states import SeriesState
from bot.run import claims, health, queue
from bot.run.health import Health, WorkerBoard, WorkerInfo
from config.settings import Settings
from state.db import Database
from state.models import SeriesRow, utcnow

log = logging.getLogger("lorebot.service")


class Pipeline(Protocol):
    """bot.run.worker.run_series, or a stand-in in tests; what it returns is not used."""

    def __call__(
        self,
        settings: Settings,
        db: Database,
        series_id: int,
        worker: str,
        should_stop: Callable[[], bool],
    ) -> object: ...


def _default_pipeline() -> Pipeline:
    # imported when first needed: the pipeline pulls in git, b4 and the checks
    from bot.run.worker import run_series

    return run_series


class WorkerPool:
    """`n` worker threads over the queue; `wake()` tells idle ones there may be work."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        n: int,
        *,
        pipeline: Pipeline | None,
        board: WorkerBoard,
        health: Health,
        stopping: threading.Event,
        failed: Callable[..., None],
        ran: Callable[[], None],
        idle_wait: float,
        retry_wait: float,
    ) -> None:
        self.settings = settings
        self.db = db
        self.n = n
        self._pipeline = pipeline
        self.board = board
        self.health = health
        self._stopping = stopping
        self._failed = failed  # logs a failed unit of work (and a database outage)
        self._ran = ran  # after each run: replies may be waiting
        self.idle_wait = idle_wait
        self.retry_wait = retry_wait  # first pause after a failed unit of work, doubling
        self._cond = threading.Condition()
        self._generation = 0
        self._threads: dict[int, threading.Thread] = {}
        self._supervised = False

    def should_stop(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        """Long-running workers, restarted by `supervise()` when they die."""
        self._supervised = True
        for i in range(self.n):
            self._start_worker(i, self._worker_loop)

    def drain(self) -> None:
        """Workers that run what is queued now, then end (`serve --once`)."""
        for i in range(self.n):
            self._start_worker(i, self._drain_loop)

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in list(self._threads.values()):
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def wake(self) -> None:
        """Tell idle workers there may be queued series."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def supervise(self) -> None:
        """Restart worker threads that died (only in `start()`'s long-running mode)."""
        if not self._supervised or self._stopping.is_set():
            return
        for index, t in list(self._threads.items()):
            if not t.is_alive():
                log.error("restarting worker-%d", index)
                self._start_worker(index, self._worker_loop)
                self.health.thread_restarted(f"worker-{index}")

    def _start_worker(self, index: int, loop: Callable[[str], None]) -> None:
        name = queue.worker_name(index)
        self.board.set(WorkerInfo(name=name))
        t = threading.Thread(
            target=self._thread_main, args=(index, name, loop), name=f"worker-{index}", daemon=True
        )
        self._threads[index] = t
        t.start()

    def _thread_main(self, index: int, name: str, loop: Callable[[str], None]) -> None:
        try:
            loop(name)
        except BaseException as e:
            # the loop guards each unit of work; this is a bug or an exit from a library
            self.health.thread_died(f"worker-{index}", f"{type(e).__name__}: {e}")
            log.critical(
                "worker-%d died; the upkeep job restarts it",
                index,
                exc_info=True,
                extra={"worker": name},
            )

    def _worker_loop(self, name: str) -> None:
        pause = self.retry_wait
        while not self._stopping.is_set():
            with self._cond:
                seen = self._generation
            try:
                ran = self._run_one(name)
            except Exception as e:
                # a unit of work failed beyond what it could clean up (the database is
                # gone): wait a little longer each time, then go on
                self._failed("worker", e, worker=name)
                self._stopping.wait(pause)
                pause = min(pause * 2, 60.0)
                continue
            pause = self.retry_wait
            if ran:
                continue
            with self._cond:
                if self._generation == seen and not self._stopping.is_set():
                    self._cond.wait(self.idle_wait)

    def _drain_loop(self, name: str) -> None:
        try:
            while not self._stopping.is_set() and self._run_one(name):
                pass
        except Exception as e:
            self._failed("worker", e, worker=name)

    def _run_one(self, name: str) -> bool:
        """Claim one series and run the pipeline on it; False if the queue was empty."""
        # held from before the claim: the upkeep job never takes a live worker's series
        with claims.held(name):
            return self._claim_and_run(name)

    def _claim_and_run(self, name: str) -> bool:
        sid = queue.claim_next(self.db, name)
        if sid is None:
            return False
        self.health.db_ok()  # the claim was a write
        extra: dict[str, Any] = {"worker": name, "series_id": sid}
        try:
            with self.db.session() as s:
                row = s.get(SeriesRow, sid)
                msgid, subject = (row.msgid, row.subject) if row else ("", "")
            extra["msgid"] = msgid
            self.board.set(WorkerInfo(name, sid, msgid, subject, utcnow()))
            started = time.monotonic()
            log.info("run start", extra=extra)
            pipeline = self._pipeline or _default_pipeline()
            pipeline(self.settings, self.db, sid, name, self.should_stop)
            self._settle(sid, name)
            log.info("run end", extra={**extra, "seconds": round(time.monotonic() - started, 3)})
        except Exception as e:
            self._failed("run", e, **extra)
            self._give_back(sid, name, e)
        finally:
            self.board.set(WorkerInfo(name))
        self._ran()
        return True

    def _give_back(self, sid: int, name: str, e: Exception) -> None:
        # retried while the database is out; if it stays out past the stop, the claim dies
        # with this thread's hold and the upkeep job takes it back when the database returns
        pause = self.retry_wait
        while True:
            try:
                queue.give_back(self.db, sid, name, e, ours=health.is_db_outage(e))
                return
            except Exception as again:
                self._failed("giving the series back", again, series_id=sid)
                if self._stopping.wait(pause):
                    return
                pause = min(pause * 2, 60.0)

    def _settle(self, sid: int, name: str) -> None:
        """A pipeline that returned while the series is still ours: resume later or fail."""
        with self.db.session() as s:
            row = s.scalar(select(SeriesRow).where(SeriesRow.id == sid))
            if row is None or row.state != SeriesState.RUNNING or row.claimed_by != name:
                return
            step = row.step
        if self._stopping.is_set():
            # stopped between steps: resumed by the next start
            queue.release(
                self.db, sid, SeriesState.QUEUED, f"drained during step {step or '?'}; resumes"
            )
        else:
            queue.release(self.db, sid, SeriesState.FAILED, "the pipeline ended without a result")
