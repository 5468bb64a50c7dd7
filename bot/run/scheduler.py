"""`lorebot serve`: the poll job, a bounded pool of workers, mail delivery and the web page.

One process: an APScheduler job polls the lists (never two polls at once)
and wakes the workers; each worker thread claims a queued series and runs
the pipeline on it. Replies are sent by their own job, never on a worker
thread, so a slow relay cannot hold a worker. The upkeep job probes the
database, refreshes the heartbeat of this process's claims, takes back what
dead holders left (bot.claims) and restarts dead worker threads.

Every unit of work (a poll, a run, a delivery pass, the upkeep) is guarded:
a failure gives back what it held with the reason and the loop goes on; a
database that cannot be written makes `/healthz` answer 503 until it can.
SIGTERM/SIGINT drain: no new claims, the current step finishes, exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from bot.core.states import SeriesState
from bot.run import claims, health, queue
from bot.run.health import Health, Page, PageFactory, WorkerBoard, WorkerInfo
from config.settings import Settings
from state.db import Database
from state.models import PollRow, SeriesRow, utcnow

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


Intake = Callable[[Settings, Database], Any]


def _default_pipeline() -> Pipeline:
    # imported when first needed: the pipeline pulls in git, b4 and the checks
    from bot.run.worker import run_series

    return run_series


def _default_intake() -> Intake:
    from bot.intake.poll import poll_once

    return poll_once


class Service:
    """The long-running bot: scheduler, workers, mail and web in one process."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        pipeline: Pipeline | None = None,
        intake: Intake | None = None,
        *,
        deliver: Callable[[], None] | None = None,
        poll_interval: float | None = None,
        web: PageFactory | None = None,
        idle_wait: float = 30.0,
        retry_wait: float = 1.0,
    ) -> None:
        self.settings = settings
        self.db = db
        self._pipeline = pipeline
        self._intake = intake
        self._deliver_fn = deliver
        self.poll_interval = poll_interval or float(settings.intake.poll_interval)
        self._page_factory = web
        self.idle_wait = idle_wait
        self.retry_wait = retry_wait  # first pause after a failed unit of work, doubling
        self.n_workers = max(1, min(settings.service.workers, os.cpu_count() or 1))
        self.board = WorkerBoard()
        self.health = Health()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._cond = threading.Condition()
        self._generation = 0
        self._poll_lock = threading.Lock()
        self._mail_lock = threading.Lock()
        self._mail_wanted = threading.Event()
        self._threads: dict[int, threading.Thread] = {}
        self._supervised = False
        self._scheduler: BackgroundScheduler | None = None
        self._web: Page | None = None

    def should_stop(self) -> bool:
        """True once a drain was asked for: the pipeline ends after its current step."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Recover interrupted work, then start workers, the jobs and the web server."""
        self.upkeep()
        self._supervised = True
        for i in range(self.n_workers):
            self._start_worker(i, self._worker_loop)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.poll,
            "interval",
            seconds=self.poll_interval,
            id="poll",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now().astimezone(),
        )
        self._scheduler.add_job(
            self._deliver_job,
            "interval",
            seconds=self.settings.mail.deliver_interval,
            id="deliver",
            max_instances=1,
            coalesce=True,
        )
        self._scheduler.add_job(
            self.upkeep,
            "interval",
            seconds=self.settings.service.heartbeat_seconds,
            id="upkeep",
            max_instances=1,
            coalesce=True,
        )
        self._scheduler.start()
        if self._page_factory:
            # the page is bot.web's, above this layer: whoever starts the service passes it
            self._web = self._page_factory(self.board, self.health)
        log.info("started: %d workers, poll every %ss", self.n_workers, self.poll_interval)

    def stop(self, timeout: float | None = None) -> None:
        """Drain: no new claims or polls, let each worker finish its step, send mail."""
        if self._stopped.is_set():
            return
        log.info("draining")
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)  # a running poll finishes first
        self.wake()
        for t in list(self._threads.values()):
            t.join(timeout)
        self.deliver()
        if self._web is not None:
            self._web.stop()
        self._stopped.set()
        log.info("stopped")

    def run_forever(self) -> int:
        """Run until SIGTERM or SIGINT, then drain; the exit status (0)."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: draining", signal.Signals(signum).name)
            self._stopping.set()
            self.wake()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            self.start()
            while not self._stopping.wait(1.0):
                pass
            self.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def run_once(self, timeout: float | None = None) -> int:
        """One poll, then run every queued series, deliver replies; the exit status (0)."""
        self.upkeep()
        self.poll()
        for i in range(self.n_workers):
            self._start_worker(i, self._drain_loop)
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in list(self._threads.values()):
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self.deliver()
        self._stopped.set()
        return 0

    def wake(self) -> None:
        """Tell idle workers there may be queued series."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _failed(self, what: str, e: BaseException, **extra: Any) -> None:
        """Log a failed unit of work; a database outage also makes the service unhealthy."""
        if health.is_db_outage(e):
            self.health.db_failed(e)
            log.error("%s: database unavailable: %s", what, e, extra=extra)
        else:
            log.exception("%s failed", what, extra=extra)

    def poll(self) -> None:
        """The intake job: poll every list once (never twice at a time), wake workers, mail."""
        if self._stopping.is_set() or not self._poll_lock.acquire(blocking=False):
            return
        started = time.monotonic()
        try:
            intake = self._intake or _default_intake()
            intake(self.settings, self.db)
        except Exception as e:
            self._failed("poll", e)
            try:
                with self.db.session() as s:
                    s.add(
                        PollRow(
                            list_name="*",
                            seconds=time.monotonic() - started,
                            error=f"{type(e).__name__}: {e}",
                        )
                    )
            except Exception as again:
                self._failed("recording the poll's error", again)
        finally:
            self._poll_lock.release()
        log.info("poll done", extra={"seconds": round(time.monotonic() - started, 3)})
        self.wake()
        self.wake_delivery()

    def upkeep(self) -> None:
        """The upkeep job: probe the database, heartbeat and take back claims, restart threads.

        Each part is guarded on its own: a locked database must not stop the
        restart of a dead worker.
        """
        from bot.run.delivery import recover_sending

        try:
            health.probe_database(self.db)
            self.health.db_ok()
        except Exception as e:
            self._failed("database probe", e)
        stale_after = timedelta(seconds=self.settings.service.stale_claim_seconds)
        try:
            claims.beat(self.db)
            recovered = queue.recover_interrupted(self.db, stale_after=stale_after)
            retried = queue.retry_held(self.db)
            if recovered or retried:
                log.info("resuming %d interrupted and %d held series", len(recovered), len(retried))
                self.wake()
            if recover_sending(self.db, stale_after):
                self.wake_delivery()
        except Exception as e:
            self._failed("keeping the claims", e)
        self._supervise()

    def wake_delivery(self) -> None:
        """Ask the delivery job to run soon (now, unless it is running: then once more)."""
        self._mail_wanted.set()
        scheduler = self._scheduler
        if scheduler is None or not scheduler.running or self._mail_lock.locked():
            return
        try:
            scheduler.modify_job("deliver", next_run_time=datetime.now().astimezone())
        except Exception:  # the job is gone: the scheduler is shutting down
            log.debug("delivery job not rescheduled", exc_info=True)

    def _deliver_job(self) -> None:
        # runs again while wake_delivery() was called during a pass
        while not self._stopping.is_set():
            self._mail_wanted.clear()
            self.deliver(should_stop=self.should_stop)
            if not self._mail_wanted.is_set():
                return

    def deliver(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Send the replies recorded by runs; mail trouble is logged, never fatal."""
        with self._mail_lock:
            try:
                if self._deliver_fn is not None:
                    self._deliver_fn()
                    return
                from bot.run.delivery import Mailer

                Mailer(self.settings, self.db).deliver_pending(should_stop)
            except Exception as e:
                self._failed("mail delivery", e)

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

    def _supervise(self) -> None:
        """Restart worker threads that died (only in `start()`'s long-running mode)."""
        if not self._supervised or self._stopping.is_set():
            return
        for index, t in list(self._threads.items()):
            if not t.is_alive():
                log.error("restarting worker-%d", index)
                self._start_worker(index, self._worker_loop)
                self.health.thread_restarted(f"worker-{index}")

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
        self.wake_delivery()
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
