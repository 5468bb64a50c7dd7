"""Scale-out: one series on four arches with 1, 2 and 4 `lorebot worker` processes.

Usage: .venv/bin/python bench/scale.py [--workers 1,2,4] [--object-seconds 0] [--json FILE]

The series of tests/support/scale.py (3 patches, six variants over x86_64, i386,
arm64 and powerpc) on tests/fakelinux. Each worker has `jobs = 1` (one compile at
a time, standing in for a host of its own) and a cold cache of its own; a real
redis-server on loopback is the broker. `--object-seconds S` makes every object
build of the tree take S seconds longer (a sleep in its Makefile), standing in for
real compile times, which fakelinux lacks.

Reports per worker count: the check's wall time, its jobs phase (send to the last
result), the speed-up of each over one worker, and the in-process check (no
broker, `build.jobs = 1`) for reference. The dispatch overhead per job is the one-
worker jobs phase minus the sum of the jobs' own times on the worker (fetch, apply,
configure, build), divided by the number of jobs: broker round trips,
(de)serialization, result polling.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.run.dispatch import collect, configure, placer
from checks.build import BuildCheck
from checks.build.jobs import JobResult, JobSpec
from config.settings import (
    BuildSettings,
    DispatchSettings,
    PathsSettings,
    Settings,
    TreeSettings,
)
from tests.support import kernel
from tests.support.redis import RedisServer
from tests.support.scale import (
    ARCHES,
    PATCHES,
    PRESETS,
    Worker,
    dispatch_table,
    four_arch_tree,
    slow_builds,
    start_all,
    write_settings,
)


def _settings(root: Path, upstream: Path, broker: str = "") -> Settings:
    return Settings(
        paths=PathsSettings(state=root / "state", cache=root / "cache"),
        trees=[TreeSettings(name="linux", url=str(upstream))],
        build=BuildSettings(arches=ARCHES, jobs=1, presets=PRESETS),
        dispatch=DispatchSettings(broker_url=broker),
    )


def _run(root: Path, upstream: Path, broker: str = "") -> dict[str, Any]:
    """One build check of the series, in-process or through the broker: its timings."""
    wt = root / "linux"
    kernel.git(root.parent, "clone", "-q", str(upstream), str(wt))
    settings = _settings(root, upstream, broker)
    ctx = kernel.series_context(wt, PATCHES, settings, root, cache_dir=root / "cache")
    phase: dict[str, Any] = {}
    if broker:

        def run_jobs(specs: list[JobSpec]) -> list[JobResult]:
            t0 = time.monotonic()
            results = collect(settings, specs, placer(settings))
            phase["jobs_seconds"] = time.monotonic() - t0
            phase["jobs"] = len(results)
            phase["job_seconds_sum"] = sum(r.seconds for r in results)
            phase["workers_used"] = len({r.worker for r in results})
            return results

        configure(settings)
        ctx.run_jobs = run_jobs
    t0 = time.monotonic()
    result = BuildCheck().run(ctx)
    wall = time.monotonic() - t0
    assert not result.fault, result.fault
    return {
        "wall_seconds": round(wall, 2),
        "variants": len(result.variants),
        "findings": len(result.findings),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in phase.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--object-seconds", type=float, default=0.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="lorebot-bench-scale-") as tmp:
        root = Path(tmp)
        upstream = four_arch_tree(root / "upstream")
        if args.object_seconds:
            slow_builds(upstream, args.object_seconds)
        out: dict[str, Any] = {"in_process": _run(root / "in-process", upstream)}
        print(f"in-process (jobs=1): {out['in_process']['wall_seconds']:.1f} s", flush=True)
        runs: dict[int, dict[str, Any]] = {}
        for n in counts:
            with RedisServer(root / f"redis-{n}") as redis:
                table = dispatch_table(redis.url)
                workers = [
                    Worker(f"b{n}-{i}", write_settings(root / f"b{n}-{i}.toml",
                                                       root / f"b{n}-{i}", upstream, table), root)
                    for i in range(n)
                ]  # fmt: skip
                try:
                    start_all(workers)
                    runs[n] = _run(root / f"run-{n}", upstream, redis.url)
                finally:
                    for w in workers:
                        w.stop()
            r = runs[n]
            print(
                f"{n} worker(s): wall {r['wall_seconds']:.1f} s, jobs phase "
                f"{r['jobs_seconds']:.1f} s ({r['jobs']} jobs on {r['workers_used']} workers)",
                flush=True,
            )
        base = runs[counts[0]]
        for r in runs.values():
            r["speedup_wall"] = round(base["wall_seconds"] / r["wall_seconds"], 2)
            r["speedup_jobs"] = round(base["jobs_seconds"] / r["jobs_seconds"], 2)
        one = runs.get(1)
        if one:
            out["dispatch_overhead_per_job_seconds"] = round(
                (one["jobs_seconds"] - one["job_seconds_sum"]) / one["jobs"], 3
            )
        out["workers"] = runs
        out["object_seconds"] = args.object_seconds
    print()
    print(f"{'workers':>8} {'wall s':>8} {'jobs s':>8} {'speed-up (wall)':>16} {'(jobs)':>8}")
    for n, r in runs.items():
        print(
            f"{n:>8} {r['wall_seconds']:>8.1f} {r['jobs_seconds']:>8.1f} "
            f"{r['speedup_wall']:>16.2f} {r['speedup_jobs']:>8.2f}"
        )
    if "dispatch_overhead_per_job_seconds" in out:
        print(f"dispatch overhead per job: {out['dispatch_overhead_per_job_seconds']:.3f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
