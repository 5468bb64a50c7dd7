"""The service with a fake intake and a fake pipeline: jobs, no overlap, drain, recovery."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import httpx
import pytest

from bot.demo.inbox import free_port
from bot.run.logfmt import KeyValueFormatter
from bot.run.scheduler import Service
from bot.web.server import page_factory
from config.settings import ServiceSettings, Settings, WebSettings
from state.db import Database
from state.models import SeriesRow
from tests.support.service import FakeIntake, FakePipeline, add_queued, states
from tests.support.waiting import wait_for


def two_workers(settings: Settings) -> Settings:
    return settings.model_copy(update={"service": ServiceSettings(workers=2)})


def test_poll_then_workers_run_everything(settings: Settings, db: Database) -> None:
    pipeline, intake = FakePipeline(), FakeIntake(n=6)
    mails: list[tuple[str, int]] = []

    def deliver() -> None:
        done = sum(1 for st in states(db).values() if st == "done")
        mails.append((threading.current_thread().name, done))

    svc = Service(
        two_workers(settings), db, pipeline, intake, deliver=deliver, web=False, idle_wait=5
    )
    svc.start()
    try:
        wait_for(lambda: len(states(db)) == 6 and set(states(db).values()) == {"done"})
        # the end of the last run woke the delivery job (its interval is far longer)
        wait_for(lambda: any(done == 6 for _, done in mails))
    finally:
        svc.stop()
    assert intake.calls >= 1
    assert sorted(sid for sid, _ in pipeline.calls) == sorted(states(db))  # each once
    assert {w for _, w in pipeline.calls} <= {w["name"] for w in svc.board.snapshot()}
    # delivery has its own job: a slow relay never holds a worker
    assert not any(name.startswith("worker-") for name, _ in mails)
    assert all(w["series_id"] is None for w in svc.board.snapshot())


def test_polls_never_overlap(settings: Settings, db: Database) -> None:
    intake = FakeIntake(seconds=0.25)
    svc = Service(
        settings, db, FakePipeline(), intake, deliver=lambda: None, poll_interval=0.05, web=False
    )
    svc.start()
    try:
        wait_for(lambda: intake.active)  # the scheduled poll is under way
        extra = [threading.Thread(target=svc.poll) for _ in range(3)]  # a manual poll too
        for t in extra:
            t.start()
        for t in extra:
            t.join()
        wait_for(lambda: intake.calls >= 3)
    finally:
        svc.stop()
    assert intake.max_active == 1


def test_poll_error_is_recorded_not_fatal(settings: Settings, db: Database) -> None:
    def broken(settings: Settings, db: Database) -> None:
        raise OSError("lore is down")

    svc = Service(settings, db, FakePipeline(), broken, deliver=lambda: None, web=False)
    svc.poll()
    with db.session() as s:
        from state.models import PollRow

        (row,) = s.query(PollRow).all()
        assert row.error == "OSError: lore is down"


def test_sigterm_drains_after_the_current_step(settings: Settings, db: Database) -> None:
    first, second = add_queued(db, 2)
    pipeline = FakePipeline(steps=("apply", "build", "semantic"), step_seconds=0.4)
    svc = Service(settings, db, pipeline, FakeIntake(), deliver=lambda: None, web=False)

    def killer() -> None:
        pipeline.started.wait(20)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=killer, daemon=True).start()
    before = signal.getsignal(signal.SIGTERM)
    assert svc.run_forever() == 0
    assert signal.getsignal(signal.SIGTERM) == before
    assert pipeline.finished_steps == ["apply"]  # the step under way finished, no more
    assert [sid for sid, _ in pipeline.calls] == [first]  # nothing new claimed
    with db.session() as s:
        row = s.get(SeriesRow, first)
        assert row is not None and row.state == "queued" and "drained" in row.reason
        assert row.attempts == 1  # kept: resumed by the next start
        assert s.get(SeriesRow, second).state == "queued"  # type: ignore[union-attr]


def test_crashed_run_is_resumed_on_start(settings: Settings, db: Database) -> None:
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
    pipeline = FakePipeline()
    svc = Service(settings, db, pipeline, FakeIntake(), deliver=lambda: None, web=False)
    svc.start()
    try:
        wait_for(lambda: states(db)[sid] == "done")
    finally:
        svc.stop()
    assert [s for s, _ in pipeline.calls] == [sid]
    with db.session() as s:
        assert s.get(SeriesRow, sid).attempts == 2  # type: ignore[union-attr]


def test_pipeline_crash_fails_the_series(settings: Settings, db: Database) -> None:
    (sid,) = add_queued(db, 1)

    def crash(
        settings: Settings,
        db: Database,
        series_id: int,
        worker: str,
        should_stop: Callable[[], bool],
    ) -> None:
        raise RuntimeError("boom")

    svc = Service(settings, db, crash, FakeIntake(), deliver=lambda: None, web=False)
    assert svc.run_once() == 0
    with db.session() as s:
        row = s.get(SeriesRow, sid)
        assert row is not None and row.state == "failed" and "boom" in row.reason


def test_run_once_drains_the_queue(settings: Settings, db: Database) -> None:
    pipeline, intake, mails = FakePipeline(), FakeIntake(n=3), []
    svc = Service(
        two_workers(settings), db, pipeline, intake, deliver=lambda: mails.append(1), web=False
    )
    assert svc.run_once(timeout=60) == 0
    assert intake.calls == 1
    assert set(states(db).values()) == {"done"} and len(pipeline.calls) == 3
    assert mails


def test_service_serves_the_status_page(settings: Settings, db: Database) -> None:
    port = free_port()
    web = WebSettings(listen="127.0.0.1", port=port)
    with_page = settings.model_copy(update={"web": web})
    svc = Service(
        with_page,
        db,
        FakePipeline(),
        FakeIntake(),
        deliver=lambda: None,
        web=page_factory(with_page, db),
    )
    svc.start()
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
            except httpx.TransportError:
                return False

        wait_for(up)
        status = httpx.get(f"http://127.0.0.1:{port}/api/status").json()
        assert [w["step"] for w in status["workers"]] == ["idle"]  # this process's worker
    finally:
        svc.stop()


def test_log_lines_carry_series_and_step() -> None:
    record = logging.LogRecord("lorebot.service", logging.INFO, __file__, 1, "run start", (), None)
    record.msgid = "a b@x"
    record.step = "build"
    line = KeyValueFormatter().format(record)
    assert line.endswith('run start msgid="a b@x" step=build')


def test_serve_once_command(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lorebot serve --once` wires the default intake and pipeline through the Service."""
    import argparse

    from bot.cli import serve
    from bot.run import scheduler as service
    from bot.run import workers

    pipeline, intake = FakePipeline(), FakeIntake(n=2)
    monkeypatch.setattr(workers, "_default_pipeline", lambda: pipeline)
    monkeypatch.setattr(service, "_default_intake", lambda: intake)
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--once"])
    assert args.func(args, settings) == 0
    assert intake.calls == 1 and len(pipeline.calls) == 2
    assert set(states(db).values()) == {"done"}
