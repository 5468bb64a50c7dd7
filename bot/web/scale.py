"""The scale-out on the page, in /api/status and /metrics: the build workers, what each
holds warm, the queue depth per arch, the jobs' durations (read from the broker)."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from typing import Any

from bot.run.placement import SHARED_QUEUE, recent_jobs, workers
from config.settings import Settings


def _arch(raw: bytes | str) -> str:
    """The arch of a queued job (its message's JSON body), or "?"."""
    try:
        msg = json.loads(raw)
        body = json.loads(base64.b64decode(msg["body"]))
        return str(body[0][0]["variant"]["arch"]["name"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "?"


def overview(settings: Settings) -> dict[str, Any] | None:
    """The workers, queue depth per arch and job durations; None without a broker."""
    d = settings.dispatch
    if not d.broker_url:
        return None
    import redis

    try:
        client = redis.Redis.from_url(d.broker_url, socket_connect_timeout=2, socket_timeout=5)
        alive = workers(client)
        queues = [SHARED_QUEUE, *(w.queue for w in alive)]
        depth: Counter[str] = Counter()
        for q in queues:
            for raw in client.lrange(q, 0, 999):
                depth[_arch(raw)] += 1
        jobs = recent_jobs(client, 200)
    except redis.exceptions.RedisError as e:
        return {"broker": "unreachable", "error": str(e), "workers": [], "queued": {}, "jobs": {}}
    now = time.time()
    per_arch: dict[str, dict[str, float]] = {}
    for j in jobs:
        a = per_arch.setdefault(j.get("arch", "?"), {"count": 0, "seconds": 0.0, "max": 0.0})
        a["count"] += 1
        a["seconds"] = round(a["seconds"] + j.get("seconds", 0.0), 2)
        a["max"] = max(a["max"], j.get("seconds", 0.0))
    return {
        "broker": "up",
        "workers": [
            {
                "name": w.name,
                "queue": w.queue,
                "busy_seconds": round(w.busy_for(now), 1),
                "warm": sorted(w.holds),
                "seen_seconds_ago": round(now - w.seen, 1),
            }
            for w in alive
        ],
        "queued": dict(sorted(depth.items())),
        "jobs": dict(sorted(per_arch.items())),
        "recent": jobs[:10],
    }


def metrics_lines(o: dict[str, Any] | None) -> list[str]:
    """Prometheus lines of `overview` (none without a broker)."""
    if o is None:
        return []
    lines = [
        "# HELP lorebot_broker_up Whether the scale-out broker answers.",
        "# TYPE lorebot_broker_up gauge",
        f"lorebot_broker_up {int(o['broker'] == 'up')}",
        "# HELP lorebot_build_workers Build workers alive (heartbeat not expired).",
        "# TYPE lorebot_build_workers gauge",
        f"lorebot_build_workers {len(o['workers'])}",
        "# HELP lorebot_build_worker_busy_seconds How long each worker has been on its job.",
        "# TYPE lorebot_build_worker_busy_seconds gauge",
    ]
    lines += [
        f'lorebot_build_worker_busy_seconds{{worker="{w["name"]}"}} {w["busy_seconds"]}'
        for w in o["workers"]
    ]
    lines += [
        "# HELP lorebot_build_worker_warm_dirs Build dirs each worker holds warm.",
        "# TYPE lorebot_build_worker_warm_dirs gauge",
    ]
    lines += [
        f'lorebot_build_worker_warm_dirs{{worker="{w["name"]}"}} {len(w["warm"])}'
        for w in o["workers"]
    ]
    lines += [
        "# HELP lorebot_build_jobs_queued Build jobs waiting in the broker, per arch.",
        "# TYPE lorebot_build_jobs_queued gauge",
    ]
    lines += [f'lorebot_build_jobs_queued{{arch="{a}"}} {n}' for a, n in o["queued"].items()]
    lines += [
        "# HELP lorebot_build_job_seconds Durations of the recent build jobs, per arch.",
        "# TYPE lorebot_build_job_seconds summary",
    ]
    for a, j in o["jobs"].items():
        lines.append(f'lorebot_build_job_seconds_sum{{arch="{a}"}} {j["seconds"]}')
        lines.append(f'lorebot_build_job_seconds_count{{arch="{a}"}} {j["count"]}')
    return lines
