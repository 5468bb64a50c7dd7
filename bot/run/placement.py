"""Placement that keeps builds warm: a job goes to the worker holding its build dir.

Each worker announces itself in Redis (a hash per worker, with a time to live that
its heartbeat renews): its queue, since when it is busy, and the build dirs it holds
(routing key -> the last job's seconds there). The coordinator sends a job to the
queue of the worker holding its build dir unless that worker would only start it
after `warm_threshold_seconds` (busy, or given other jobs of the same series); then
to the shared queue, which every worker reads. `choose` is the pure part.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHARED_QUEUE = "lorebot.jobs"  # every worker reads it
PREFIX = "lorebot:worker:"
JOBS_KEY = "lorebot:jobs"  # recent jobs (newest first): where they ran and how long
JOBS_KEPT = 500


@dataclass(frozen=True)
class WorkerState:
    """What a worker announced."""

    name: str
    queue: str
    busy_since: float = 0.0  # 0: idle
    holds: Mapping[str, float] = field(default_factory=dict)  # build dir -> last seconds
    seen: float = 0.0  # its last heartbeat

    def busy_for(self, now: float) -> float:
        return now - self.busy_since if self.busy_since else 0.0


def worker_queue(name: str) -> str:
    return f"lorebot.worker.{name}"


def choose(
    build_dir: str,
    workers: Sequence[WorkerState],
    now: float,
    threshold: float,
    planned: Mapping[str, float],
    shared: str,
) -> tuple[str, str]:
    """(queue, worker name or "") for a job on `build_dir`: the warm worker whose wait
    (busy so far plus the work `planned` on it in this batch) is within the threshold,
    the least loaded first; else the shared queue."""
    warm = [w for w in workers if build_dir in w.holds]
    warm.sort(key=lambda w: (w.busy_for(now) + planned.get(w.name, 0.0), w.name))
    for w in warm:
        if w.busy_for(now) + planned.get(w.name, 0.0) <= threshold:
            return w.queue, w.name
    return shared, ""


def held_build_dirs(cache: Path) -> list[str]:
    """The routing keys of the build dirs under a worker's cache:
    build/<tree>-<slot>/<arch>/<variant key> -> "<tree>:<arch>:<variant key>"."""
    out = []
    root = cache / "build"
    for tree_slot in sorted(root.iterdir()) if root.is_dir() else []:
        tree = tree_slot.name.rsplit("-", 1)[0]
        for arch in sorted(p for p in tree_slot.iterdir() if p.is_dir()):
            for d in sorted(p for p in arch.iterdir() if p.is_dir()):
                if not d.name.endswith((".trusted", ".lock")) and (d / ".config").exists():
                    out.append(f"{tree}:{arch.name}:{d.name}")
    return out


def announce(
    client: Any, w: WorkerState, ttl: float, holds_update: Mapping[str, float] | None = None
) -> None:
    """Write (or renew) a worker's announcement, with a time to live."""
    key = PREFIX + w.name
    holds = dict(w.holds)
    if holds_update:
        holds.update(holds_update)
    client.hset(
        key,
        mapping={
            "queue": w.queue,
            "busy_since": str(w.busy_since),
            "holds": json.dumps(holds),
            "seen": str(time.time()),
        },
    )
    client.expire(key, max(1, int(ttl)))


def workers(client: Any) -> list[WorkerState]:
    """Every worker announced and alive (its heartbeat not expired)."""
    out = []
    for key in sorted(client.scan_iter(match=PREFIX + "*")):
        raw = client.hgetall(key)
        if not raw:
            continue
        d = {_s(k): _s(v) for k, v in raw.items()}
        name = _s(key).removeprefix(PREFIX)
        out.append(
            WorkerState(
                name=name,
                queue=d.get("queue", worker_queue(name)),
                busy_since=float(d.get("busy_since") or 0),
                holds=json.loads(d.get("holds") or "{}"),
                seen=float(d.get("seen") or 0),
            )
        )
    return out


def record_job(client: Any, entry: Mapping[str, Any]) -> None:
    """Keep one finished job's facts (worker, build dir, queue, seconds) for the page."""
    client.lpush(JOBS_KEY, json.dumps(dict(entry)))
    client.ltrim(JOBS_KEY, 0, JOBS_KEPT - 1)


def recent_jobs(client: Any, n: int = JOBS_KEPT) -> list[dict[str, Any]]:
    return [json.loads(_s(x)) for x in client.lrange(JOBS_KEY, 0, n - 1)]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
