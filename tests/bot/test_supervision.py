"""The service survives its faults: a locked database, a dead worker thread, a dead process.

Real SQLite locks, real threads and the real status page on loopback; the
pipeline is a fake whose steps write to the database as the real one does.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from bot.demo.inbox import free_port
from bot.run.scheduler import Service
from bot.web.server import page_factory
from config.settings import ServiceSettings, Settings, WebSettings
from state.db import Database
from state.models import RunRow, SeriesRow, utcnow
from tests.support.service import FakeIntake, add_queued, states
from tests.support.waiting import wait_for


def quick(settings: Settings, port: int = 0) -> Settings:
    """One worker, upkeep every second, the page on `port` when given."""
    update: dict[str, object] = {
        "service": ServiceSettings(workers=1, heartbeat_seconds=1, stale_claim_seconds=3)
    }
    if port:
        update["web"] = WebSettings(listen="127.0.0.1", port=port)
    return settings.model_copy(update=update)


class GatedPipeline:
    """Writes its step like the real pipeline; the first run waits at `gate` after "apply"."""

    def __init__(self, fail: Callable[[int], None] = lambda sid: None) -> None:
        self.gate = threading.Event()
        self.at_gate = threading.Event()
        self.calls: list[int] = []
        self.fail = fail

    def __call__(
        self,
        settings: Settings,
        db: Database,
        series_id: int,
        worker: str,
        should_stop: Callable[[], bool],
    ) -> None:
        self.calls.append(series_id)
        self.fail(series_id)
        for step in ("apply", "build"):
            with db.session() as s:
                row = s.get(SeriesRow, series_id)
                assert row is not None
                row.step = step
                s.add(RunRow(series_id=series_id, state="running", step=step))
            if not self.at_gate.is_set():
                self.at_gate.set()
                self.gate.wait(60)
        with db.session() as s:
            row = s.get(SeriesRow, series_id)
            assert row is not None
            row.state, row.step, row.claimed_by = "done", "", ""
            for run in s.query(RunRow).filter_by(series_id=series_id, state="running"):
                run.state = "done"


def healthz(port: int) -> tuple[int, str]:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    except httpx.TransportError:
        return 0, ""
    return r.status_code, r.text


def test_locked_database_during_a_run(settings: Settings) -> None:
    # a writer waits 0.2 s for a lock, not 30: the outage shows quickly
    db = Database(settings.database_url, busy_timeout=0.2)
    first, second = add_queued(db, 2)
    port = free_port()
    pipeline = GatedPipeline()
    paged = quick(settings, port)
    svc = Service(
        paged,
        db,
        pipeline,
        FakeIntake(),
        deliver=lambda: None,
        retry_wait=0.05,
        web=page_factory(paged, db),
    )
    svc.start()
    locker = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        assert pipeline.at_gate.wait(30)
        assert healthz(port) == (200, "ok")
        locker.execute("BEGIN EXCLUSIVE")  # held far longer than a step may wait
        pipeline.gate.set()  # the run's next step cannot write its state
        wait_for(lambda: healthz(port)[0] == 503)
        text = healthz(port)[1]
        assert text.startswith("unhealthy: database unavailable since ")
        assert "database is locked" in text
        locker.execute("ROLLBACK")
        # the run was given back, retried, and the worker went on to the next series
        wait_for(lambda: states(db) == {first: "done", second: "done"})
        wait_for(lambda: healthz(port) == (200, "ok"))
    finally:
        locker.close()
        svc.stop()
        db.dispose()
    assert pipeline.calls == [first, first, second]
    with db.session() as s:
        row = s.get(SeriesRow, first)
        assert row is not None and row.attempts == 2
        runs = {r.state for r in s.query(RunRow).filter_by(series_id=first)}
        assert "running" not in runs and "interrupted" in runs


class Die(BaseException):
    """What no `except Exception` catches: the worker thread dies."""


def test_dead_worker_thread_is_restarted(settings: Settings, db: Database) -> None:
    (doomed,) = add_queued(db, 1)
    died: list[int] = []

    def fail(sid: int) -> None:
        if not died:
            died.append(sid)
            raise Die("killed in the middle of a run")

    pipeline = GatedPipeline(fail)
    pipeline.at_gate.set()  # no gate: steps run straight through
    svc = Service(quick(settings), db, pipeline, FakeIntake(), deliver=lambda: None, web=False)
    svc.start()
    try:
        # the series the dead thread held is taken back, and a new thread runs it
        wait_for(lambda: states(db) == {doomed: "done"})
        (later,) = add_queued(db, 1)
        svc.wake()
        wait_for(lambda: states(db)[later] == "done")
        assert svc.health.problems() == []
    finally:
        svc.stop()
    assert pipeline.calls == [doomed, doomed, later]


def test_claim_of_a_dead_process_is_taken_back_while_running(
    settings: Settings, db: Database
) -> None:
    pipeline = GatedPipeline()
    pipeline.at_gate.set()
    svc = Service(quick(settings), db, pipeline, FakeIntake(), deliver=lambda: None, web=False)
    svc.start()
    try:
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        (sid,) = add_queued(
            db,
            1,
            state="running",
            step="build",
            attempts=1,
            claimed_by=f"{socket.gethostname()}/{gone.pid}/w0",
        )
        wait_for(lambda: states(db)[sid] == "done")  # no restart needed
    finally:
        svc.stop()
    assert pipeline.calls == [sid]


def test_healthz_without_a_service_reads_the_database(settings: Settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from bot.web import create_app

    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    client = TestClient(create_app(settings, db))
    assert client.get("/healthz").text == "ok"
    (tmp_path / "h.db").unlink()
    db.dispose()
    (tmp_path / "h.db").mkdir()  # where the file was, nothing SQLite can open
    r = client.get("/healthz")
    assert r.status_code == 503 and r.text.startswith("unhealthy: database unreadable")


# claims one series as a `lorebot serve` worker would, then waits to be killed
CLAIMER = """
import sys, time
from bot.run import claims, queue
from state.db import Database
db = Database(sys.argv[1])
assert queue.claim(db, int(sys.argv[2]), claims.holder_name("w0"))
print("claimed", flush=True)
time.sleep(600)
"""


def _claim_then_kill_9(settings: Settings, sid: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, settings.database_url, str(sid)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
    proc.kill()  # SIGKILL: no drain, no release; the claim stays in the database
    proc.wait()


def test_kill_9_then_an_immediate_restart_takes_the_claim_back(
    settings: Settings, db: Database
) -> None:
    (sid,) = add_queued(db, 1)
    _claim_then_kill_9(settings, sid)
    assert states(db)[sid] == "running"
    pipeline = GatedPipeline()
    pipeline.at_gate.set()
    svc = Service(quick(settings), db, pipeline, FakeIntake(), deliver=lambda: None, web=False)
    svc.start()  # at once: no stale-claim age to wait out, the holder's pid is gone
    try:
        wait_for(lambda: states(db)[sid] == "done")
    finally:
        svc.stop()
    assert pipeline.calls == [sid]


def test_kill_9_of_another_process_is_recovered_while_running(
    settings: Settings, db: Database
) -> None:
    pipeline = GatedPipeline()
    pipeline.at_gate.set()
    svc = Service(quick(settings), db, pipeline, FakeIntake(), deliver=lambda: None, web=False)
    # held for a day: this service leaves it alone until the other process claims it
    (sid,) = add_queued(db, 1, state="held", retry_at=utcnow() + timedelta(days=1))
    svc.start()
    try:
        _claim_then_kill_9(settings, sid)
        wait_for(lambda: states(db)[sid] == "done")  # taken back by the upkeep, then run
    finally:
        svc.stop()
    assert pipeline.calls == [sid]
