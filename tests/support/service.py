"""Fakes of the service's two jobs (intake, pipeline) and rows to feed them.

Their steps write to the database and check should_stop as the real ones do,
so the scheduler's claims, drains and recovery are tested for real.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from config.settings import Settings
from state.db import Database
from state.models import SeriesRow


def add_queued(db: Database, n: int, state: str = "queued", **fields: object) -> list[int]:
    with db.session() as s:
        rows = [
            SeriesRow(list_name="l", msgid=f"s{i}-{os.urandom(3).hex()}@x", state=state, **fields)
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def states(db: Database) -> dict[int, str]:
    with db.session() as s:
        return {r.id: r.state for r in s.query(SeriesRow)}


class FakePipeline:
    """Steps of `step_seconds`, checking should_stop between them, like the real one."""

    def __init__(self, steps: tuple[str, ...] = ("apply", "build"), step_seconds: float = 0.05):
        self.steps = steps
        self.step_seconds = step_seconds
        self.calls: list[tuple[int, str]] = []
        self.finished_steps: list[str] = []
        self.started = threading.Event()
        self.lock = threading.Lock()

    def __call__(
        self,
        settings: Settings,
        db: Database,
        series_id: int,
        worker: str,
        should_stop: Callable[[], bool],
    ) -> None:
        with self.lock:
            self.calls.append((series_id, worker))
        for step in self.steps:
            if should_stop():
                return  # leaves the series "running": the service puts it back
            with db.session() as s:
                row = s.get(SeriesRow, series_id)
                assert row is not None
                row.step = step
            self.started.set()
            time.sleep(self.step_seconds)
            self.finished_steps.append(step)
        with db.session() as s:
            row = s.get(SeriesRow, series_id)
            assert row is not None
            row.state, row.step, row.claimed_by = "done", "", ""


class FakeIntake:
    """Queues `n` series on its first poll; counts polls and their overlap."""

    def __init__(self, n: int = 0, seconds: float = 0.0):
        self.n = n
        self.seconds = seconds
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def __call__(self, settings: Settings, db: Database) -> None:
        with self.lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            first = self.calls == 1
        try:
            if first and self.n:
                add_queued(db, self.n)
            time.sleep(self.seconds)
        finally:
            with self.lock:
                self.active -= 1
