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
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from bot.run import claims, health, queue
from bot.run.health import Health, Page, PageFactory, WorkerBoard
from bot.run.workers import Pipeline, WorkerPool
from config.settings import Settings
from state.db import Database
from state.models import PollRow

log = logging.getLogger("lorebot.service")


Intake = Callable[[Settings, Database], Any]


def _default_intake() -> Intake:
    from bot.intake.poll import poll_once

    def poll(settings: Settings, db: Database) -> Any:
        # a list that stalls past one interval goes on in the background; the next
        # pass polls the other lists on time
        return poll_once(settings, db, wait=float(settings.intake.poll_interval))

    return poll


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
        self._intake = intake
        self._deliver_fn = deliver
        self.poll_interval = poll_interval or float(settings.intake.poll_interval)
        self._page_factory = web
        self.n_workers = max(1, min(settings.service.workers, os.cpu_count() or 1))
        self.board = WorkerBoard()
        self.health = Health()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._poll_lock = threading.Lock()
        self._mail_lock = threading.Lock()
        self._mail_wanted = threading.Event()
        self.workers = WorkerPool(
            settings,
            db,
            self.n_workers,
            pipeline=pipeline,
            board=self.board,
            health=self.health,
            stopping=self._stopping,
            failed=self._failed,
            ran=self.wake_delivery,
            idle_wait=idle_wait,
            retry_wait=retry_wait,
        )
        self._scheduler: BackgroundScheduler | None = None
        self._web: Page | None = None

    def should_stop(self) -> bool:
        """True once a drain was asked for: the pipeline ends after its current step."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Recover interrupted work, then start workers, the jobs and the web server."""
        self.upkeep()
        self.workers.start()
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
        self._add_upkeep_jobs(self._scheduler)
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
        self.workers.join(timeout)
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
        self.workers.drain()
        self.workers.join(timeout)
        self.deliver()
        self._stopped.set()
        return 0

    def wake(self) -> None:
        """Tell idle workers there may be queued series."""
        self.workers.wake()

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
        self.workers.supervise()

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

    def _add_upkeep_jobs(self, scheduler: BackgroundScheduler) -> None:
        """The trees' sync jobs and the cache's gc job (bot.treesync, bot.gc)."""
        from bot.run.gc import GcJob
        from bot.run.treesync import TreeJobs

        self.tree_jobs = TreeJobs(self.settings, self.db, self.should_stop)
        self.tree_jobs.add_to(scheduler)
        GcJob(self.settings, self.db, self.should_stop).add_to(scheduler)
