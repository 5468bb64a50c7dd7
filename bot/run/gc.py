"""Disk stays bounded: the cache under its quota, old logs and outbox mails removed.

`lorebot gc [--dry-run]` and the service's gc job run `collect`; a check that
would start with less than `cache.min_free_bytes` free under the cache first
evicts idle entries, then, if that is not enough, is held (a fault of ours).
An entry is removed while its lock is held, so a run can never take a slot or
build dir that is being deleted, and one a run holds is never touched.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bot.core.runner import Runner
from bot.trees.diskplan import CacheEntry, free_needed, plan_eviction
from bot.trees.repo import Repo
from config.settings import Settings
from state.db import Database
from state.models import CacheUsageRow, utcnow

log = logging.getLogger("lorebot.gc")

#: what the cache holds, by the top directory under `paths.cache`
KINDS = {"slots": "slots", "build": "build", "git": "git", "ccache": "ccache"}


class GcStopped(Exception):
    """The service is draining: a gc pass stops where it is (it removes nothing half)."""


def _never() -> bool:
    return False


def tree_bytes(path: Path, stop: Callable[[], bool] = _never) -> int:
    """Disk used under `path` (blocks, not apparent sizes; symlinks not followed)."""
    total = 0
    stack = [path]
    seen = 0
    while stack:
        seen += 1
        if seen % 4096 == 0 and stop():  # a kernel worktree is ~90k files
            raise GcStopped(str(path))
        p = stack.pop()
        try:
            st = p.lstat()
        except OSError:
            continue
        total += st.st_blocks * 512
        if p.is_dir() and not p.is_symlink():
            try:
                stack.extend(p.iterdir())
            except OSError:
                continue
    return total


@contextmanager
def try_lock(lock_path: Path) -> Iterator[IO[str] | None]:
    """The entry's lock if nobody holds it (None when a run does)."""
    try:
        f = lock_path.open("a")
    except OSError:
        yield None
        return
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        yield None
        return
    try:
        yield f
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def _lock_of(entry: Path) -> Path:
    return entry.with_name(entry.name + ".lock")


def _locks_of(entry: Path) -> list[Path]:
    """The locks a run may hold on an entry: a slot's own; for an arch's build dirs, the
    lock beside each O= dir inside it too (a build holds those, `Make.hold`)."""
    return [_lock_of(entry), *sorted(entry.glob("*.lock"))]


@contextmanager
def try_locks(entry: Path) -> Iterator[bool]:
    """All of the entry's locks if nobody holds any (False when a run holds one)."""
    with ExitStack() as stack:
        for lock in _locks_of(entry):
            if stack.enter_context(try_lock(lock)) is None:
                yield False
                return
        yield True


def _used_at(entry: Path) -> float:
    """When a run last used the entry: its locks are touched when taken."""
    times = []
    for p in (entry, *_locks_of(entry)):
        with suppress(OSError):
            times.append(p.stat().st_mtime)
    return max(times, default=0.0)


def scan(cache: Path, stop: Callable[[], bool] = _never) -> list[CacheEntry]:
    """The evictable entries: build dirs (`build/<tree>-<slot>/<arch>`) and slots."""
    dirs = [(p, "slot") for p in sorted((cache / "slots").glob("*")) if p.is_dir()]
    dirs += [(p, "build") for p in sorted((cache / "build").glob("*/*")) if p.is_dir()]
    out = []
    for path, kind in dirs:
        with try_locks(path) as free:
            in_use = not free
        out.append(CacheEntry(path, kind, tree_bytes(path, stop), _used_at(path), in_use))
    return out


def _older_than(root: Path, cutoff: float) -> list[Path]:
    """Run log dirs / files and outbox mails under `root` last changed before `cutoff`."""
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if p.is_dir() and p.name in ("new", "cur", "tmp", "trees"):
            out += [f for f in p.iterdir() if f.is_file() and f.stat().st_mtime < cutoff]
        elif p.stat().st_mtime < cutoff:
            out.append(p)
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


@dataclass
class GcReport:
    """What one gc pass measured, removed (or, dry, would remove)."""

    dry_run: bool
    quota: int
    total_before: int = 0
    total_after: int = 0
    usage: dict[str, int] = field(default_factory=dict)  # kind -> bytes, after
    entries: dict[str, int] = field(default_factory=dict)  # kind -> count, after
    evicted: list[dict[str, Any]] = field(default_factory=list)
    skipped_in_use: list[str] = field(default_factory=list)
    logs_removed: int = 0
    outbox_removed: int = 0
    bases_removed: int = 0  # refs/bases/* (bases fetched by sha) older than the retention
    seconds: float = 0.0

    def json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "quota_bytes": self.quota,
            "total_bytes_before": self.total_before,
            "total_bytes_after": self.total_after,
            "usage": self.usage,
            "entries": self.entries,
            "evicted": self.evicted,
            "in_use": self.skipped_in_use,
            "logs_removed": self.logs_removed,
            "outbox_removed": self.outbox_removed,
            "bases_removed": self.bases_removed,
            "seconds": self.seconds,
        }


def _evict(entries: list[CacheEntry], report: GcReport, cache: Path) -> int:
    """Remove `entries` (each under its lock, skipped if a run took it meanwhile); bytes."""
    freed = 0
    slots = False
    for e in entries:
        with try_locks(e.path) as free:
            if not free:
                report.skipped_in_use.append(str(e.path))
                continue
            if not report.dry_run:
                _remove(e.path)
            slots = slots or e.kind == "slot"
        freed += e.bytes
        report.evicted.append(
            {
                "path": str(e.path.relative_to(cache)),
                "kind": e.kind,
                "bytes": e.bytes,
                "last_used": datetime.fromtimestamp(e.used_at).isoformat(timespec="seconds"),
            }
        )
        log.info("evicted %s %s (%d bytes)", e.kind, e.path, e.bytes)
    if slots and not report.dry_run and (cache / "git" / "kernel.git").exists():
        # the removed slots' worktree records: a slot is made again on its next use
        Repo(cache / "git" / "kernel.git", Runner()).git("worktree", "prune", check=False)
    return freed


def _mirror(cache: Path) -> Repo | None:
    git_dir = cache / "git" / "kernel.git"
    return Repo(git_dir, Runner()) if (git_dir / "HEAD").exists() else None


def _prune_bases(cache: Path, cutoff: float, dry_run: bool) -> int:
    """Drop the refs of bases fetched by sha whose commit is older than the retention: a
    series on one of them fetches it again."""
    repo = _mirror(cache)
    if repo is None:
        return 0
    out = repo.git(
        "for-each-ref", "--format=%(refname) %(committerdate:unix)", "refs/bases/", check=False
    )
    refs = (ln.partition(" ") for ln in out.splitlines())
    old = [ref for ref, _, t in refs if int(t or 0) < cutoff]
    if old and not dry_run:
        lines = "".join(f"delete {ref}\n" for ref in old)
        repo.g.run("update-ref", "--stdin", input=lines.encode(), timeout=60, name="prune-bases")
    return len(old)


def _pack_mirror(cache: Path) -> None:
    """Repack the mirror when its syncs have left many packs or loose objects (git's own
    heuristics; the mirror's gc.auto is 0 so that no fetch stalls on an automatic gc)."""
    repo = _mirror(cache)
    if repo is not None:
        repo.git("-c", "gc.auto=6700", "gc", "--auto", "--quiet", check=False, timeout=3600)


def usage(cache: Path, stop: Callable[[], bool] = _never) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes and entries per kind under the cache ("other": inbox mirrors and the rest)."""
    sizes: dict[str, int] = {k: 0 for k in (*KINDS.values(), "other")}
    counts: dict[str, int] = dict.fromkeys(sizes, 0)
    if not cache.is_dir():
        return sizes, counts
    for p in cache.iterdir():
        kind = KINDS.get(p.name, "other")
        sizes[kind] += tree_bytes(p, stop)
        if kind == "slots":
            counts[kind] += sum(1 for s in p.iterdir() if s.is_dir())
        elif kind == "build":
            counts[kind] += sum(1 for s in p.glob("*/*") if s.is_dir())
        else:
            counts[kind] += 1
    return sizes, counts


def collect(
    settings: Settings,
    *,
    dry_run: bool = False,
    quota: int | None = None,
    need: int = 0,
    stop: Callable[[], bool] = _never,
) -> GcReport:
    """One gc pass: evict LRU entries to stay under the quota (and to free `need` bytes),
    remove logs and outbox mails past the retention period."""
    started = time.monotonic()
    cache = settings.paths.cache
    quota = settings.cache.quota_bytes if quota is None else quota
    report = GcReport(dry_run=dry_run, quota=quota)
    sizes, _ = usage(cache, stop)
    report.total_before = sum(sizes.values())
    entries = scan(cache, stop)
    target = min(quota or report.total_before, report.total_before - need)
    plan = plan_eviction(entries, report.total_before, target)
    _evict(plan, report, cache)
    days = settings.cache.retention_days
    if days:
        cutoff = time.time() - days * 86400
        old_logs = _older_than(settings.paths.logs, cutoff)
        old_mail = _older_than(settings.paths.outbox, cutoff)
        report.logs_removed, report.outbox_removed = len(old_logs), len(old_mail)
        if not dry_run:
            for p in [*old_logs, *old_mail]:
                _remove(p)
        report.bases_removed = _prune_bases(cache, cutoff, dry_run)
    if not dry_run and not stop():
        _pack_mirror(cache)
    if dry_run:
        report.usage = sizes
        report.total_after = report.total_before - sum(int(e["bytes"]) for e in report.evicted)
    else:
        report.usage, report.entries = usage(cache, stop)
        report.total_after = sum(report.usage.values())
    report.seconds = round(time.monotonic() - started, 3)
    return report


def record_usage(db: Database, report: GcReport) -> None:
    """The cache's sizes per kind, for the page and /metrics."""
    now = utcnow()
    with db.session() as s:
        for kind, n in report.usage.items():
            row = s.get(CacheUsageRow, kind) or CacheUsageRow(kind=kind)
            row.bytes, row.entries, row.measured_at = n, report.entries.get(kind, 0), now
            s.add(row)


def disk_fault(settings: Settings) -> str:
    """Why a check must not start for lack of disk ("" when there is enough): idle entries
    are evicted first; what is still missing holds the series (never fails or mails it)."""
    minimum = settings.cache.min_free_bytes
    cache = settings.paths.cache
    if not minimum:
        return ""
    cache.mkdir(parents=True, exist_ok=True)
    need = free_needed(shutil.disk_usage(cache).free, minimum)
    if not need:
        return ""
    report = collect(settings, need=need)
    free = shutil.disk_usage(cache).free
    if free >= minimum:
        log.info("freed %d entries for a check", len(report.evicted))
        return ""
    return (
        f"not enough free disk under the cache: {free // 2**20} MiB free, "
        f"cache.min_free_bytes asks for {minimum // 2**20} MiB"
    )


class GcJob:
    """The service's gc job: every `cache.gc_interval` seconds, never two at a time."""

    def __init__(self, settings: Settings, db: Database, stopping: Callable[[], bool]):
        self.settings = settings
        self.db = db
        self.stopping = stopping

    def add_to(self, scheduler: Any) -> None:
        scheduler.add_job(
            self.run,
            "interval",
            seconds=self.settings.cache.gc_interval,
            id="gc",
            max_instances=1,
            coalesce=True,
            # measured soon after the start (for the page), not in the way of the first poll
            next_run_time=datetime.now().astimezone()
            + timedelta(seconds=min(60, self.settings.cache.gc_interval)),
        )

    def run(self) -> GcReport | None:
        if self.stopping():
            return None
        try:
            report = collect(self.settings, stop=self.stopping)
            record_usage(self.db, report)
            return report
        except GcStopped:
            log.info("gc stopped: the service is draining")
            return None
        except Exception:
            log.exception("gc failed")
            return None
