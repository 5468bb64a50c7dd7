"""Who holds a claim on a row, and whether that holder still lives.

Series and replies are claimed with a compare-and-set that writes
`claimed_by` = "host/pid/name". A claim is alive while its holder is:

- on this host, the pid names a running process (not a zombie) that started
  before the claim was made, so a pid reused after `kill -9` is not taken
  for the dead holder; a claim made by this very process is alive only while
  one of its threads holds it (`held`), since a restarted service often gets
  the same pid (pid 1 in a container);
- on another host, nothing can be asked but the database: its holder
  refreshes `heartbeat_at` every few seconds, and a heartbeat older than
  `stale_after` means the holder is gone.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bot.core.states import ReplyState, SeriesState
from state.db import Database
from state.models import ReplyRow, SeriesRow, utcnow

#: How much a process's start may follow its claim and still be the same process
#: (the two times come from different clocks: /proc's boot time and the database's).
_START_SLACK = timedelta(seconds=2)

_held_lock = threading.Lock()
_held: dict[str, int] = {}


def holder_name(name: str) -> str:
    """A claim holder unique across hosts and processes: host/pid/name."""
    return f"{socket.gethostname()}/{os.getpid()}/{name}"


@contextmanager
def held(name: str) -> Iterator[None]:
    """Mark `name` as held by a live thread of this process while the block runs."""
    with _held_lock:
        _held[name] = _held.get(name, 0) + 1
    try:
        yield
    finally:
        with _held_lock:
            _held[name] -= 1
            if not _held[name]:
                del _held[name]


def held_here() -> frozenset[str]:
    """The claim holders of this process that a live thread is working for now."""
    with _held_lock:
        return frozenset(_held)


def _boot_time() -> datetime | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return datetime.fromtimestamp(int(line.split()[1]), UTC).replace(tzinfo=None)
    except (OSError, ValueError):
        pass
    return None


def process_state(pid: int) -> tuple[str, datetime | None] | None:
    """(state letter, start time as naive UTC) of a process, from /proc; None if it is gone.

    Where /proc cannot tell, the state is "?" and the start unknown.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?", None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat.rpartition(")")[2].split()
    boot = _boot_time()
    try:
        ticks = int(fields[19])  # field 22, starttime, in clock ticks since boot
        start = None if boot is None else boot + timedelta(seconds=ticks / os.sysconf("SC_CLK_TCK"))
    except (IndexError, ValueError, OSError):
        start = None
    return (fields[0] if fields else "?"), start


def claim_alive(
    claimed_by: str,
    claimed_at: datetime | None,
    heartbeat_at: datetime | None,
    now: datetime,
    stale_after: timedelta,
) -> bool:
    """Whether the holder of a claim still works on it (see the module's rules)."""
    parts = claimed_by.split("/")
    if len(parts) < 3 or not parts[0]:
        return False
    host, pid_text = parts[0], parts[1]
    if host != socket.gethostname():
        last = max((t for t in (heartbeat_at, claimed_at) if t is not None), default=None)
        return last is not None and now - last < stale_after
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return claimed_by in held_here()
    state = process_state(pid)
    if state is None or state[0] in ("Z", "X"):
        return False
    started = state[1]
    # a process that started after the claim was made cannot have made it: the pid was reused
    return not (
        started is not None and claimed_at is not None and started > claimed_at + _START_SLACK
    )


def beat(db: Database) -> int:
    """Refresh `heartbeat_at` of every row a live thread of this process holds; how many."""
    holders = held_here()
    if not holders:
        return 0
    now = utcnow()
    n = 0
    with db.session() as s:
        for table, working in (
            (SeriesRow, SeriesRow.state == SeriesState.RUNNING),
            (ReplyRow, ReplyRow.state == ReplyState.SENDING),
        ):
            result = s.execute(
                update(table)
                .where(working, table.claimed_by.in_(holders))
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            n += getattr(result, "rowcount", 0) or 0
    return n


@contextmanager
def heartbeat(db: Database, every: float) -> Iterator[None]:
    """Refresh this process's claims every `every` seconds while the block runs (a
    foreground run has no service upkeep job to do it)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                beat(db)
            except Exception:  # a missed beat is retried; the run itself goes on
                continue

    t = threading.Thread(target=loop, name="heartbeat", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(every + 5)
