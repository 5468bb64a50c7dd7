"""The service's view of itself: what each worker does (the page) and its health (/healthz).

Health is what an orchestrator needs to restart or page: the database the
service cannot write to, and worker threads that died and were not yet
restarted. Both live in the process, because a database that cannot be
written cannot record its own outage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import false, update
from sqlalchemy.exc import OperationalError

from state.db import Database
from state.models import FaultRow, utcnow


def is_db_outage(e: BaseException) -> bool:
    """Whether `e` means the database cannot be used now (locked, full disk, gone)."""
    return isinstance(e, OperationalError)


def probe_database(db: Database) -> None:
    """Take the database's write lock and let go, changing nothing; raises if it cannot."""
    with db.session() as s:
        # an UPDATE that matches no row still needs the write lock (SQLite) or a write
        # transaction (PostgreSQL): a read alone succeeds on a locked or full database
        s.execute(update(FaultRow).where(false()).values(message=FaultRow.message))


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


class Health:
    """Thread-safe record of the service's faults; `problems()` is empty when healthy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: tuple[datetime, str] | None = None
        self._threads: dict[str, str] = {}

    def db_failed(self, e: BaseException) -> None:
        """A database operation failed for want of the database (see is_db_outage)."""
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        with self._lock:
            since = self._db[0] if self._db else utcnow()
            self._db = (since, reason)

    def db_ok(self) -> None:
        """A write to the database went through."""
        with self._lock:
            self._db = None

    def thread_died(self, name: str, reason: str) -> None:
        with self._lock:
            self._threads[name] = reason

    def thread_restarted(self, name: str) -> None:
        with self._lock:
            self._threads.pop(name, None)

    def problems(self) -> list[str]:
        """One line per fault, naming what is wrong and since when."""
        with self._lock:
            out = []
            if self._db:
                since, reason = self._db
                out.append(f"database unavailable since {since:%Y-%m-%d %H:%M:%S} UTC: {reason}")
            out += [f"thread {n} died: {r}" for n, r in sorted(self._threads.items())]
            return out


class Page(Protocol):
    """The status page started beside the service."""

    def stop(self) -> None: ...


PageFactory = Callable[[WorkerBoard, Health], Page]
