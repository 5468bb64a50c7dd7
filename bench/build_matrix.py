"""Build-matrix benchmark: the build check over a 15-patch mm series on linux-source-6.12.

Usage: .venv/bin/python bench/build_matrix.py [--patches N] [--arches a,b,..]
       [--max-variants N] [--full] [--json FILE]

Writes an mm series in its own worktree slot (`bench-build`), runs
`BuildCheck` over it and reports wall time per phase (impact analysis,
configs, baseline, each patch), objects × variants built, the ccache hit rate
of the run (`ccache --print-stats`), and the findings. `--full` also runs
`make -j2 vmlinux` of x86_64 defconfig in a fresh O= dir with the same ccache,
for comparison (about 14 minutes when ccache is cold).

Run it twice: the first run warms the O= dirs and ccache; the second is the
number that matters ("warm").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.runner import CommandResult, Runner
from checks.build import BuildCheck
from config.settings import BuildSettings, load_settings
from tests.support import kernel
from tests.support.mm_series import mm_series, written


class TimingRunner(Runner):
    """A Runner that also keeps every command's name, argv and duration."""

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None):
        super().__init__(log_dir, env)
        self.calls: list[tuple[str, tuple[str, ...], float]] = []

    def run(self, argv: Sequence[str | os.PathLike[str]], **kw: object) -> CommandResult:
        r = super().run(argv, **kw)  # type: ignore[arg-type]
        self.calls.append((str(kw.get("name", "")), r.argv, r.seconds))
        return r


def ccache_stats(runner: Runner, ccache_dir: Path) -> dict[str, int]:
    r = runner.run(
        ["ccache", "--print-stats"], env={"CCACHE_DIR": str(ccache_dir)}, name="ccache-stats"
    )
    stats = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition("\t")
        if v.strip().isdigit():
            stats[k] = int(v)
    return stats


def _by_name(calls: Sequence[tuple[str, tuple[str, ...], float]]) -> dict[str, list[float]]:
    """Count and seconds of the commands of a run, by runner name, slowest first."""
    out: dict[str, list[float]] = {}
    for name, _, seconds in calls:
        entry = out.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] = round(entry[1] + seconds, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1][1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=15)
    ap.add_argument("--arches", default="x86_64,i386,arm64,powerpc")
    ap.add_argument("--max-variants", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also time make -j2 vmlinux")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    cache = kernel.test_cache()
    tmp = Path(tempfile.mkdtemp(prefix="lorebot-bench-"))
    settings = load_settings(
        None, paths={"state": str(tmp / "state"), "cache": str(cache)}, lists=[], trees=[]
    )
    settings = settings.model_copy(
        update={
            "build": BuildSettings(
                arches=args.arches.split(","),
                max_variants=args.max_variants,
                jobs=args.jobs,
                reuse=False,  # the same series again: warm builds, not reused results
            )
        }
    )
    t0 = time.monotonic()
    wt = kernel.kernel_slot("bench-build")
    patches = written(mm_series(args.patches))
    ctx = kernel.series_context(wt, patches, settings, tmp, cache_dir=cache)
    runner = TimingRunner(tmp / "logs")
    ctx.runner = runner
    setup = time.monotonic() - t0
    marks: list[tuple[str, float]] = []
    ctx.progress = lambda step, frac: marks.append((step, time.monotonic()))
    ccache_dir = cache / "ccache"
    runner.run(["ccache", "--zero-stats"], env={"CCACHE_DIR": str(ccache_dir)})
    start = time.monotonic()
    findings = list(BuildCheck().run(ctx).findings)
    total = time.monotonic() - start
    stats = ccache_stats(runner, ccache_dir)

    phases: dict[str, float] = {}
    bounds = [(s, t) for s, t in marks]
    for (step, t), (_, t_next) in zip(bounds, [*bounds[1:], ("end", start + total)], strict=True):
        key = step if not step.startswith("build: configuring") else "build: configs"
        phases[key] = phases.get(key, 0.0) + (t_next - t)
    builds = [c for c in runner.calls if c[0].endswith("-build")]
    objects_built = sum(sum(1 for a in argv if a.endswith(".o")) for _, argv, _ in builds)
    variants = sorted(
        {a.split("O=", 1)[1] for _, argv, _ in builds for a in argv if a.startswith("O=")}
    )
    hits = stats.get("direct_cache_hit", 0) + stats.get("preprocessed_cache_hit", 0)
    misses = stats.get("cache_miss", 0)
    result = {
        "patches": args.patches,
        "setup_seconds": round(setup, 1),
        "check_seconds": round(total, 1),
        "phases": {k: round(v, 1) for k, v in phases.items()},
        "commands": _by_name(runner.calls),
        "make_calls": len(builds),
        "make_seconds": round(sum(s for _, _, s in builds), 1),
        "objects_x_variants_built": objects_built,
        "variants": [v.rsplit("/", 2)[-2] + "/" + v.rsplit("/", 1)[-1] for v in variants],
        "ccache": {
            "hits": hits,
            "misses": misses,
            "hit_rate": round(hits / (hits + misses), 3) if hits + misses else None,
        },
        "findings": [
            (f.patch, f.kind, f.arch, f.config, f.file, f.line, f.message) for f in findings
        ],
    }
    if args.full:
        odir = cache / "build" / "bench-full-x86_64"
        shutil.rmtree(odir, ignore_errors=True)
        env = {"CCACHE_DIR": str(ccache_dir), "CCACHE_BASEDIR": str(wt)}
        make = [
            "make",
            "-C",
            str(wt),
            f"O={odir}",
            "ARCH=x86_64",
            "CC=ccache gcc",
            "HOSTCC=ccache gcc",
        ]
        runner.run([*make, "defconfig"], env=env, name="full-defconfig")
        t = time.monotonic()
        r = runner.run([*make, "-j2", "vmlinux"], env=env, timeout=3600, name="full-vmlinux")
        result["full_vmlinux_seconds"] = round(time.monotonic() - t, 1)
        result["full_vmlinux_ok"] = r.ok
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
