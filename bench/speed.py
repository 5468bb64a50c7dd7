"""How fast a 20-patch series is answered, against the physical limit measured in the same run.

Usage: .venv/bin/python bench/speed.py [--patches 20] [--arches x86_64,i386,arm64,powerpc]
       [--cold] [--no-followup] [--json FILE]

Writes the mm series of tests/support/mm_series.py (a MIGRATION=n break in patch
6, a W=1 warning in patch 10) in the worktree slot of the build benches (`bench-build`), each
note patch salted with a variable unique to this run so that its objects are
really compiled (a warm machine has the base in its O= dirs and ccache, never a
new series), runs `BuildCheck` on the default arches, then a one-patch follow-up
on top of the series' head, the way the pipeline checks follow-ups.

Reports per run: wall time, planning (impact analysis and configs, before the
first compile), the phases, the make and replay calls, and the physical limit:
every real compile of the run (ccache misses) timed by a CCACHE_PREFIX wrapper
inside the sandbox (its CPU time, user and system), summed and divided by
`build.jobs` (the cores the check may use). `--cold` uses a fresh cache
directory (empty O= dirs and ccache).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.build_matrix import TimingRunner, _by_name
from bot.demo.series import DemoPatch, Edit
from checks.build import BuildCheck
from checks.build import make as make_module
from config.settings import BuildSettings, Settings, load_settings
from tests.support import kernel
from tests.support.mm_series import mm_series, read_base, written

SLOT = "bench-build"  # shared with build_matrix.py: its x86_64 O= dirs are warm
TIMES = ".lorebot-bench-cc-times"  # written in the O= dir, where compiles run
WRAPPER = "bench-cc-time.sh"  # kept in the ccache dir, the one dir every sandbox sees

_plain_env = make_module.Make.env


def _timed_env(self: make_module.Make, trusted: bool) -> dict[str, str]:
    """Make's environment plus the timing wrapper around every real compile."""
    return {**_plain_env(self, trusted), "CCACHE_PREFIX": str(self.ccache_dir / WRAPPER)}


def install_wrapper(ccache_dir: Path) -> None:
    ccache_dir.mkdir(parents=True, exist_ok=True)
    w = ccache_dir / WRAPPER
    # the compiler's CPU time (user + system, its children included), not its wall time:
    # compiles that share the cores each take longer on the clock, not in CPU
    # a compile whose working directory is read-only (objtool's host tools run in the
    # source tree) cannot be timed there: it still runs, untimed, rather than fail the build
    w.write_text(
        "#!/bin/bash\nTIMEFORMAT='%3U %3S'\n"
        f'[ -w . ] || exec "$@"\n{{ time "$@" 2>&3 ; }} 3>&2 2>>{TIMES}\n'
    )
    w.chmod(0o755)


def compile_seconds(build_root: Path, clear: bool = False) -> tuple[float, int]:
    """CPU seconds and count of the real compiles logged under `build_root`'s O= dirs."""
    total, count = 0.0, 0
    for f in build_root.rglob(TIMES):
        for line in f.read_text().splitlines():
            fields = line.split()
            if len(fields) == 2 and all(x.replace(".", "", 1).isdigit() for x in fields):
                total += float(fields[0]) + float(fields[1])
                count += 1
        if clear:
            f.unlink()
    return total, count


def salted(patches: list[DemoPatch], salt: str) -> list[DemoPatch]:
    """The note patches, each adding a variable named after this run: their objects change."""
    out = []
    for i, p in enumerate(patches, 1):
        if p.subject.endswith(f"note {i}") and len(p.edits) == 1:
            e = p.edits[0]
            extra = f"static int __maybe_unused lorebot_bench_{salt}_{i};\n"
            p = DemoPatch(p.subject, p.body, (Edit(e.path, e.old, e.new + extra),))
        out.append(p)
    return out


def followup(salt: str) -> DemoPatch:
    path = "mm/filemap.c"
    tail = read_base(path)[-80:]
    return DemoPatch(
        f"{path}: follow-up note",
        "A follow-up on top of the series.",
        (Edit(path, tail, tail + f"\nstatic int __maybe_unused lorebot_followup_{salt};\n"),),
    )


def run(
    name: str, patches: list[DemoPatch], settings: Settings, cache: Path, tmp: Path
) -> dict[str, object]:
    # the follow-up goes on top of the series' head, in the same worktree
    wt = kernel.kernel_slot(SLOT) if name == "series" else kernel.test_cache() / "slots" / SLOT
    ctx = kernel.series_context(wt, written(patches), settings, tmp / name, cache_dir=cache)
    runner = TimingRunner(tmp / name / "logs")
    ctx.runner = runner
    marks: list[tuple[str, float]] = []
    ctx.progress = lambda step, frac: marks.append((step, time.monotonic()))
    build_root = cache / "build"
    compile_seconds(build_root, clear=True)
    start = time.monotonic()
    result = BuildCheck().run(ctx)
    wall = time.monotonic() - start
    phases: dict[str, float] = {}
    ends = [t for _, t in marks[1:]] + [start + wall]
    for (step, t), t_next in zip(marks, ends, strict=True):
        key = "build: configs" if step.startswith("build: configuring") else step
        phases[key] = round(phases.get(key, 0.0) + (t_next - t), 2)
    planning = sum(
        v for k, v in phases.items() if k in ("build: impact analysis", "build: configs")
    )
    cc, n = compile_seconds(build_root, clear=True)
    limit = cc / max(1, settings.build.jobs)
    return {
        "run": name,
        "patches": len(patches),
        "wall_seconds": round(wall, 1),
        "planning_seconds": round(planning, 2),
        "real_compiles": n,
        "compile_cpu_seconds": round(cc, 1),
        "physical_limit_seconds": round(limit, 1),
        "ratio_to_limit": round(wall / limit, 2) if limit else None,
        "variants": [f"{v.arch} {v.config}" for v in result.variants],
        "phases": phases,
        "commands": _by_name(runner.calls),
        "findings": [
            (f.patch, f.kind, f.arch, f.config, f.file, f.message) for f in result.findings
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=20)
    ap.add_argument("--arches", default=",".join(BuildSettings().arches))
    ap.add_argument("--cold", action="store_true", help="a fresh cache: empty O= dirs, ccache")
    ap.add_argument("--no-followup", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    kernel.kernel_git_dir()
    tmp = Path(tempfile.mkdtemp(prefix="lorebot-speed-"))
    cache = tmp / "cache" if args.cold else kernel.test_cache()
    settings = load_settings(
        None, paths={"state": str(tmp / "state"), "cache": str(cache)}, lists=[], trees=[]
    )
    settings = settings.model_copy(update={"build": BuildSettings(arches=args.arches.split(","))})
    install_wrapper(cache / "ccache")
    make_module.Make.env = _timed_env  # type: ignore[method-assign]
    salt = str(int(time.time()))
    out = [run("series", salted(mm_series(args.patches), salt), settings, cache, tmp)]
    if not args.no_followup:
        out.append(run("follow-up", [followup(salt)], settings, cache, tmp))
    for r in out:
        print(json.dumps(r, indent=1), flush=True)
    s = out[0]
    print(
        f"\n{'cold' if args.cold else 'warm'}, {args.arches}: series {s['wall_seconds']} s "
        f"(planning {s['planning_seconds']} s; physical limit {s['physical_limit_seconds']} s "
        f"from {s['real_compiles']} real compiles; ratio {s['ratio_to_limit']})"
        + (f"; follow-up {out[1]['wall_seconds']} s" if len(out) > 1 else "")
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
