"""The build plan with one arch and with the default four, side by side, in one run.

Usage: .venv/bin/python bench/plan.py [--patches 20] [--rounds 2] [--json FILE]

Writes the mm series of tests/support/mm_series.py (a MIGRATION=n break in patch 6, a
W=1 warning in patch 10) into its own worktree slot and runs `BuildCheck`
with `build.arches = ["x86_64"]` and with the default arches, `--rounds`
times each, alternating (the first round warms O= dirs and ccache; the last
is the warm number). Prints, per run: variants planned, built and dropped,
objects per built variant, whether the MIGRATION=n break was found, and the
wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checks.build import BuildCheck
from config.settings import BuildSettings, load_settings
from tests.support import kernel
from tests.support.mm_series import mm_series, written


def run_once(arches: list[str], patches: int, cache: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="lorebot-plan-") as tmp_dir:
        tmp = Path(tmp_dir)
        settings = load_settings(
            None, paths={"state": str(tmp / "state"), "cache": str(cache)}, lists=[], trees=[]
        )
        settings = settings.model_copy(update={"build": BuildSettings(arches=arches)})
        wt = kernel.kernel_slot("bench-build")
        ctx = kernel.series_context(wt, written(mm_series(patches)), settings, tmp, cache_dir=cache)
        start = time.monotonic()
        result = BuildCheck().run(ctx)
        seconds = time.monotonic() - start
    found = any(f.severity == "error" and "MIGRATION=n" in f.config for f in result.findings)
    return {
        "arches": arches,
        "seconds": round(seconds, 1),
        "planned": len(result.variants) + len(result.dropped),
        "built": len(result.variants),
        "dropped": [f"{v.arch} {v.config}: {v.reason}" for v in result.dropped],
        "objects_per_variant": {f"{v.arch} {v.config}": len(v.objects) for v in result.variants},
        "findings": len(result.findings),
        "migration_break_found": found,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cache = kernel.test_cache()
    kernel.kernel_git_dir()
    four = BuildSettings().arches
    runs = []
    for r in range(args.rounds):
        for arches in (["x86_64"], four):
            out = run_once(arches, args.patches, cache)
            out["round"] = r + 1
            runs.append(out)
            print(json.dumps(out, indent=1), flush=True)
    last = {len(r["arches"]): r for r in runs if r["round"] == args.rounds}  # type: ignore[arg-type]
    one, many = last[1], last[len(four)]
    print(
        f"\nround {args.rounds}: 1 arch {one['seconds']} s, {one['built']} variants; "
        f"{len(four)} arches {many['seconds']} s, {many['built']} variants; ratio "
        f"{float(many['seconds']) / max(0.1, float(one['seconds'])):.2f}x; "  # type: ignore[arg-type]
        f"MIGRATION=n break found: {one['migration_break_found']} / "
        f"{many['migration_break_found']}"
    )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
