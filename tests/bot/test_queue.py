"""Claiming series: never twice, across threads and processes; crash recovery."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.run import queue
from state.db import Database
from state.models import RunRow, SeriesRow

N_SERIES = 40


def add_series(db: Database, n: int, state: str = "queued", **fields: Any) -> list[int]:
    with db.session() as s:
        rows = [
            SeriesRow(
                list_name="l", msgid=f"{state}-{i}-{os.urandom(4).hex()}@x", state=state, **fields
            )
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def test_claim_takes_oldest_and_marks_running(db: Database) -> None:
    ids = add_series(db, 3)
    assert queue.claim_next(db, "me/1/w0") == ids[0]
    with db.session() as s:
        row = s.get(SeriesRow, ids[0])
        assert row is not None
        assert (row.state, row.claimed_by, row.attempts) == ("running", "me/1/w0", 1)
        assert row.claimed_at is not None
    assert queue.claim_next(db, "me/1/w0") == ids[1]


def test_claim_empty_queue(db: Database) -> None:
    add_series(db, 2, state="waiting")
    assert queue.claim_next(db, "w") is None


def _claim_until_empty(db: Database, worker: str, out: list[int], start: threading.Barrier) -> None:
    start.wait()
    while (sid := queue.claim_next(db, worker)) is not None:
        out.append(sid)


def test_threads_never_take_a_series_twice(db: Database) -> None:
    ids = add_series(db, N_SERIES)
    got: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4)
    threads = [
        threading.Thread(target=_claim_until_empty, args=(db, f"t/{i}", got[i], start))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    taken = [sid for part in got for sid in part]
    assert sorted(taken) == ids  # every one, once
    with db.session() as s:
        rows = [s.get(SeriesRow, i) for i in ids]
        assert all(r is not None and r.attempts == 1 and r.state == "running" for r in rows)


def claim_in_process(url: str, worker: str, out_file: str, start: Any) -> None:
    """Child process: wait for the start signal, claim until the queue is empty."""
    db = Database(url, migrate=False)
    start.wait(30)
    got = []
    while (sid := queue.claim_next(db, worker)) is not None:
        got.append(sid)
    Path(out_file).write_text(json.dumps(got))
    db.dispose()


def test_processes_never_take_a_series_twice(db: Database, tmp_path: Path) -> None:
    ids = add_series(db, N_SERIES)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [
        ctx.Process(
            target=claim_in_process, args=(db.url, f"p/{i}", str(tmp_path / f"p{i}.json"), start)
        )
        for i in range(2)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    parts = [json.loads((tmp_path / f"p{i}.json").read_text()) for i in range(2)]
    taken = parts[0] + parts[1]
    assert sorted(taken) == ids
    with db.session() as s:
        by = {s.get(SeriesRow, i).claimed_by for i in ids}  # type: ignore[union-attr]
    assert by <= {"p/0", "p/1"}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recover_interrupted(db: Database) -> None:
    host = socket.gethostname()
    dead = f"{host}/{dead_pid()}/w0"
    (resumable,) = add_series(db, 1, state="running", claimed_by=dead, attempts=1, step="build")
    (mine,) = add_series(db, 1, state="running", claimed_by=queue.worker_name(0), attempts=2)
    (hopeless,) = add_series(db, 1, state="running", claimed_by=dead, attempts=3)
    (elsewhere,) = add_series(
        db, 1, state="running", claimed_by=f"{host}/{os.getppid()}/w0", attempts=1
    )
    (reused,) = add_series(
        db,
        1,
        state="running",
        claimed_by=f"{host}/{os.getppid()}/w1",
        attempts=1,
        claimed_at=datetime(2000, 1, 1),
    )
    (done,) = add_series(db, 1, state="done")
    with db.session() as s:
        s.add(RunRow(series_id=resumable, state="running", step="build"))

    recovered = queue.recover_interrupted(db)

    assert sorted(recovered) == sorted([resumable, mine, reused])
    with db.session() as s:

        def get(i: int) -> SeriesRow:
            row = s.get(SeriesRow, i)
            assert row is not None
            return row

        assert get(resumable).state == "queued" and get(resumable).attempts == 1
        assert "build" in get(resumable).reason and get(resumable).claimed_by == ""
        assert get(mine).state == "queued"
        assert get(hopeless).state == "failed" and "3 times" in get(hopeless).reason
        assert get(elsewhere).state == "running"  # its worker process still lives
        assert get(reused).state == "queued"  # a day-old claim: that pid is someone else now
        assert get(done).state == "done"
        run = s.query(RunRow).filter_by(series_id=resumable).one()
        assert run.state == "failed" and "interrupted" in run.error and run.finished_at
    # resumed series are claimed again, attempts counting on
    assert queue.claim_next(db, "w") == resumable
    with db.session() as s:
        assert s.get(SeriesRow, resumable).attempts == 2  # type: ignore[union-attr]


def test_release_and_requeue(db: Database) -> None:
    (sid,) = add_series(db, 1)
    assert queue.claim_next(db, "w") == sid
    assert not queue.requeue(db, sid)  # running: refused
    queue.release(db, sid, "done")
    with db.session() as s:
        row = s.get(SeriesRow, sid)
        assert row is not None and row.state == "done" and row.claimed_by == ""
    assert queue.requeue(db, sid)
    with db.session() as s:
        row = s.get(SeriesRow, sid)
        assert row is not None and row.state == "queued" and row.attempts == 0
    assert not queue.requeue(db, 999_999)
    with pytest.raises(queue.QueueError):
        queue.release(db, sid, "running")
