"""Trees that stay fresh: the service's sync job per tree, recorded for the page and /metrics.

A sync that fails (the server is down, the network stalls) is logged and
recorded with its reason, and retried sooner than the next regular sync; it
never stops the service, the intake or the queue: series go on being tested
on what the mirror has (and on a base-commit fetched by sha).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.runner import Runner
from bot.trees.repo import Repo, TreeError
from config.settings import Settings, TreeSettings
from state.db import Database
from state.models import TreeSyncRow, utcnow

log = logging.getLogger("lorebot.trees")


@dataclass(frozen=True)
class SyncResult:
    tree: str
    ok: bool
    heads: dict[str, str]
    changed: bool  # a branch moved (or appeared)
    error: str
    seconds: float


def sync_tree(settings: Settings, db: Database | None, tree: TreeSettings) -> SyncResult:
    """Fetch one tree's branches and record the outcome (never raises for a failed fetch)."""
    repo = Repo.open(settings, Runner(settings.paths.logs / "trees"))
    before = {b: repo.branch_sha(tree.name, b) or "" for b in tree.branches}
    started = time.monotonic()
    try:
        heads = repo.sync(tree, settings.network)
        error = ""
    except TreeError as e:
        heads, error = before, str(e)
    seconds = round(time.monotonic() - started, 3)
    result = SyncResult(tree.name, not error, heads, heads != before, error, seconds)
    if error:
        log.error("sync of tree %s failed: %s", tree.name, error)
    else:
        log.info("synced tree %s%s", tree.name, " (moved)" if result.changed else "")
    if db is not None:
        record(db, result)
    return result


def record(db: Database, r: SyncResult) -> int:
    """Write one sync's outcome; the failures in a row so far."""
    now = utcnow()
    with db.session() as s:
        row = s.get(TreeSyncRow, r.tree) or TreeSyncRow(tree=r.tree, failures=0)
        row.last_try_at, row.seconds, row.error = now, r.seconds, r.error
        if r.ok:
            row.last_ok_at, row.failures, row.heads = now, 0, dict(r.heads)
            if r.changed:
                row.changed_at = now
        else:
            row.failures = (row.failures or 0) + 1
        s.add(row)
        return row.failures


def retry_delay(tree: TreeSettings, failures: int) -> float:
    """Seconds until a failed sync is tried again: doubling, never past the interval."""
    return float(min(tree.sync_interval, tree.sync_retry_seconds * 2 ** min(failures - 1, 16)))


def never_synced(settings: Settings, repo: Repo, names: list[str]) -> list[TreeSettings]:
    """The trees among `names` with a URL of which no configured branch is in the mirror."""
    out = []
    for t in settings.trees:
        if t.name in names and t.url and not any(repo.branch_sha(t.name, b) for b in t.branches):
            out.append(t)
    return out


def sync_missing(settings: Settings, db: Database | None, names: list[str]) -> list[SyncResult]:
    """Sync the trees among `names` that were never synced (`lorebot check` on a fresh
    cache); the others are left to the schedule."""
    repo = Repo.open(settings, Runner(settings.paths.logs / "trees"))
    return [sync_tree(settings, db, t) for t in never_synced(settings, repo, names)]


class TreeJobs:
    """The service's sync job of each tree with a URL: one APScheduler job per tree, every
    `sync_interval` seconds jittered by a tenth, never two of one tree at a time; a failed
    sync is brought forward to its retry time."""

    def __init__(self, settings: Settings, db: Database, stopping: Callable[[], bool]):
        self.settings = settings
        self.db = db
        self.stopping = stopping
        self._locks = {t.name: threading.Lock() for t in settings.trees}
        self._scheduler: Any = None

    @staticmethod
    def job_id(tree: str) -> str:
        return f"sync-{tree}"

    def add_to(self, scheduler: Any) -> None:
        """Schedule the jobs; the first sync of each tree runs at once."""
        self._scheduler = scheduler
        now = datetime.now().astimezone()
        for t in self.settings.trees:
            if not t.url:
                continue  # an imported tree has nothing to fetch
            scheduler.add_job(
                self.run,
                "interval",
                args=[t.name],
                seconds=t.sync_interval,
                jitter=max(1, t.sync_interval // 10),
                id=self.job_id(t.name),
                max_instances=1,
                coalesce=True,
                next_run_time=now,
            )

    def run(self, name: str) -> SyncResult | None:
        """One sync of tree `name` (skipped while another is running); never raises."""
        lock = self._locks.get(name)
        if self.stopping() or lock is None or not lock.acquire(blocking=False):
            return None
        try:
            tree = self.settings.tree(name)
            result = sync_tree(self.settings, None, tree)
            try:
                failures = record(self.db, result)
            except Exception:
                log.exception("recording the sync of tree %s", name)
                failures = 0 if result.ok else 1
            if not result.ok:
                self._retry(tree, failures)
            return result
        except Exception:
            log.exception("sync of tree %s failed", name)
            return None
        finally:
            lock.release()

    def _retry(self, tree: TreeSettings, failures: int) -> None:
        delay = retry_delay(tree, failures)
        log.warning("sync of tree %s: retrying in %.0f s", tree.name, delay)
        if self._scheduler is None or not self._scheduler.running:
            return
        try:
            self._scheduler.modify_job(
                self.job_id(tree.name),
                next_run_time=datetime.now().astimezone() + timedelta(seconds=delay),
            )
        except Exception:  # shutting down: the job is gone
            log.debug("sync retry of %s not scheduled", tree.name, exc_info=True)
