"""`lorebot serve`: the poll job, a bounded pool of workers, mail delivery and the web page.

One process: an APScheduler job polls the lists (never two polls at once)
and wakes the workers; each worker thread claims a queued series and runs
the pipeline on it. Replies are sent by their own job (every
`mail.deliver_interval`, and soon after a poll or a run ends), never on a
worker thread, so a slow relay cannot hold a worker. A third job keeps the
claims: it refreshes the heartbeat of what this process holds and takes
back what dead holders left (bot.claims), while running, not only at start.
SIGTERM/SIGINT drain: no new claims, the current step finishes, exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from bot import claims, queue
from config.settings import Settings
from state.db import Database
from state.models import PollRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.service")


class Pipeline(Protocol):
    def __call__(
        self, settings: Settings, db: Database, series_id: int, worker: str,
        should_stop: Callable[[], bool],
    ) -> None: ...


Intake = Callable[[Settings, Database], Any]

#: Extra record fields printed by KeyValueFormatter, in this order.
LOG_FIELDS = ("worker", "series_id", "msgid", "step", "list", "seconds")


class KeyValueFormatter(logging.Formatter):
    """`time level logger: message key=value ...` lines, with the series and step when given."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        pairs = []
        for key in LOG_FIELDS:
            value = getattr(record, key, None)
            if value is None or value == "":
                continue
            text = str(value)
            if not text or any(c in text for c in ' "='):
                text = '"' + text.replace('"', '\\"') + '"'
            pairs.append(f"{key}={text}")
        if not pairs:
            return line
        head, sep, tail = line.partition("\n")  # keep tracebacks after the pairs
        return f"{head} {' '.join(pairs)}{sep}{tail}"


@dataclass
class WorkerInfo:
    """What one worker is doing, for the status page."""

    name: str
    series_id: int | None = None
    msgid: str = ""
    subject: str = ""
    started: datetime | None = None


class WorkerBoard:
    """Thread-safe, in-memory view of the workers of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerInfo] = {}

    def set(self, info: WorkerInfo) -> None:
        with self._lock:
            self._workers[info.name] = info

    def snapshot(self) -> list[dict[str, Any]]:
        """One dict per worker: name, series_id, msgid, subject, started (naive UTC)."""
        with self._lock:
            return [dict(vars(w)) for w in sorted(self._workers.values(), key=lambda w: w.name)]


def _default_pipeline() -> Pipeline:
    # imported when first needed: the pipeline pulls in git, b4 and the checks
    from bot.worker import run_series

    return run_series


def _default_intake() -> Intake:
    from bot.intake import poll_once

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
        web: bool = True,
        idle_wait: float = 30.0,
    ) -> None:
        self.settings = settings
        self.db = db
        self._pipeline = pipeline
        self._intake = intake
        self._deliver_fn = deliver
        self.poll_interval = poll_interval or float(settings.intake.poll_interval)
        self.web_enabled = web
        self.idle_wait = idle_wait
        self.n_workers = max(1, min(settings.service.workers, os.cpu_count() or 1))
        self.board = WorkerBoard()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._cond = threading.Condition()
        self._generation = 0
        self._poll_lock = threading.Lock()
        self._mail_lock = threading.Lock()
        self._mail_wanted = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scheduler: BackgroundScheduler | None = None
        self._web_server: Any = None
        self._web_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def should_stop(self) -> bool:
        """True once a drain was asked for: the pipeline ends after its current step."""
        return self._stopping.is_set()

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.settings.service.stale_claim_seconds)

    def start(self) -> None:
        """Recover interrupted work, then start workers, the jobs and the web server."""
        self.keep_claims()
        for i in range(self.n_workers):
            name = queue.worker_name(i)
            self.board.set(WorkerInfo(name=name))
            t = threading.Thread(target=self._worker_loop, args=(name,), name=f"worker-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.poll, "interval", seconds=self.poll_interval, id="poll",
            max_instances=1, coalesce=True, next_run_time=datetime.now().astimezone(),
        )
        self._scheduler.add_job(
            self._deliver_job, "interval", seconds=self.settings.mail.deliver_interval,
            id="deliver", max_instances=1, coalesce=True,
        )
        self._scheduler.add_job(
            self.keep_claims, "interval", seconds=self.settings.service.heartbeat_seconds,
            id="claims", max_instances=1, coalesce=True,
        )
        self._scheduler.start()
        if self.web_enabled:
            self._start_web()
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
        for t in self._threads:
            t.join(timeout)
        self.deliver()
        self._stop_web()
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
        self.keep_claims()
        self.poll()
        for i in range(self.n_workers):
            name = queue.worker_name(i)
            self.board.set(WorkerInfo(name=name))
            t = threading.Thread(target=self._drain_loop, args=(name,), name=f"worker-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self.deliver()
        self._stopped.set()
        return 0

    # -- jobs --------------------------------------------------------------

    def wake(self) -> None:
        """Tell idle workers there may be queued series."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def poll(self) -> None:
        """The intake job: poll every list once (never twice at a time), wake workers, mail."""
        if self._stopping.is_set() or not self._poll_lock.acquire(blocking=False):
            return
        started = time.monotonic()
        try:
            intake = self._intake or _default_intake()
            intake(self.settings, self.db)
        except Exception as e:
            log.exception("poll failed")
            with self.db.session() as s:
                s.add(PollRow(list_name="*", seconds=time.monotonic() - started,
                              error=f"{type(e).__name__}: {e}"))
        finally:
            self._poll_lock.release()
        log.info("poll done", extra={"seconds": round(time.monotonic() - started, 3)})
        self.wake()
        self.wake_delivery()

    def keep_claims(self) -> None:
        """The claims job: heartbeat what this process holds, take back what dead holders left."""
        from bot.mail import recover_sending

        try:
            claims.beat(self.db)
            recovered = queue.recover_interrupted(self.db, stale_after=self.stale_after)
            if recovered:
                log.info("resuming %d interrupted series", len(recovered))
                self.wake()
            if recover_sending(self.db, self.stale_after):
                self.wake_delivery()
        except Exception:
            log.exception("keeping the claims failed")

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
                from bot.mail import Mailer

                Mailer(self.settings, self.db).deliver_pending(should_stop)
            except Exception:
                log.exception("mail delivery failed")

    # -- workers -----------------------------------------------------------

    def _worker_loop(self, name: str) -> None:
        while not self._stopping.is_set():
            with self._cond:
                seen = self._generation
            if self._run_one(name):
                continue
            with self._cond:
                if self._generation == seen and not self._stopping.is_set():
                    self._cond.wait(self.idle_wait)

    def _drain_loop(self, name: str) -> None:
        while not self._stopping.is_set() and self._run_one(name):
            pass

    def _run_one(self, name: str) -> bool:
        """Claim one series and run the pipeline on it; False if the queue was empty."""
        # held from before the claim: the claims job never takes a live worker's series
        with claims.held(name):
            return self._claim_and_run(name)

    def _claim_and_run(self, name: str) -> bool:
        try:
            sid = queue.claim_next(self.db, name)
        except Exception:
            log.exception("claim failed", extra={"worker": name})
            time.sleep(1.0)
            return False
        if sid is None:
            return False
        with self.db.session() as s:
            row = s.get(SeriesRow, sid)
            msgid, subject = (row.msgid, row.subject) if row else ("", "")
        extra = {"worker": name, "series_id": sid, "msgid": msgid}
        self.board.set(WorkerInfo(name, sid, msgid, subject, utcnow()))
        started = time.monotonic()
        log.info("run start", extra=extra)
        try:
            pipeline = self._pipeline or _default_pipeline()
            pipeline(self.settings, self.db, sid, name, self.should_stop)
        except Exception as e:
            log.exception("run crashed", extra=extra)
            queue.release(self.db, sid, "failed", f"internal error: {type(e).__name__}: {e}")
        else:
            self._settle(sid, name)
        finally:
            self.board.set(WorkerInfo(name))
        with self.db.session() as s:
            row = s.get(SeriesRow, sid)
            final = row.state if row else "?"
        log.info("run end: %s", final,
                 extra={**extra, "seconds": round(time.monotonic() - started, 3)})
        self.wake_delivery()
        return True

    def _settle(self, sid: int, name: str) -> None:
        """A pipeline that returned while the series is still ours: resume later or fail."""
        with self.db.session() as s:
            row = s.scalar(select(SeriesRow).where(SeriesRow.id == sid))
            if row is None or row.state != "running" or row.claimed_by != name:
                return
            step = row.step
        if self._stopping.is_set():
            # stopped between steps: resumed by the next start
            queue.release(self.db, sid, "queued", f"drained during step {step or '?'}; resumes")
        else:
            queue.release(self.db, sid, "failed", "the pipeline ended without a result")

    # -- web ---------------------------------------------------------------

    def _start_web(self) -> None:
        import uvicorn

        from bot.web import create_app

        app = create_app(self.settings, self.db, service_state=self.board)
        config = uvicorn.Config(app, host=self.settings.web.listen, port=self.settings.web.port,
                                log_level="warning", access_log=False)
        self._web_server = uvicorn.Server(config)
        self._web_thread = threading.Thread(target=self._web_server.run, name="web", daemon=True)
        self._web_thread.start()
        deadline = time.monotonic() + 10
        while not self._web_server.started and self._web_thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if self._web_server.started:
            log.info("web on http://%s:%s", self.settings.web.listen, self.settings.web.port)
        else:
            # the bot's main job goes on; the page is missing, say so loudly
            log.error("the status page did not start on %s:%s (port in use?)",
                      self.settings.web.listen, self.settings.web.port)

    def _stop_web(self) -> None:
        if self._web_server is not None:
            self._web_server.should_exit = True
        if self._web_thread is not None:
            self._web_thread.join(10)
