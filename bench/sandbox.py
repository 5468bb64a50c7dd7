"""The sandbox's cost, side by side with the same builds run without it, in one run.

Usage: .venv/bin/python bench/sandbox.py [--patches 15] [--rounds 2] [--json FILE]

1. Per call: `true` run 50 times through the sandbox and through the unsandboxed
   wrapper (the same allow-listed environment and limits, no bubblewrap).
2. Per series: the build check on the first `--patches` patches of the
   mm series of tests/support/mm_series.py (x86_64), with the sandbox and without it,
   alternating; round 1 warms the O= dirs and ccache for both, the last round is
   the number. The ratio is sandboxed / unsandboxed wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.runner import Runner
from bot.core.sandbox import Sandbox
from checks.base import sandbox_for
from checks.build import BuildCheck
from config.settings import BuildSettings, load_settings
from tests.support import kernel
from tests.support.mm_series import mm_series, written


def per_call(box: Sandbox, n: int = 50) -> float:
    runner = Runner()
    start = time.monotonic()
    for _ in range(n):
        box.run(runner, ["true"], cwd=Path("/"), timeout=60, name="true")
    return (time.monotonic() - start) / n


def build_once(box: Sandbox, patches: int, cache: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="lorebot-sandbox-") as tmp_dir:
        tmp = Path(tmp_dir)
        settings = load_settings(
            None, paths={"state": str(tmp / "state"), "cache": str(cache)}, lists=[], trees=[]
        )
        settings = settings.model_copy(update={"build": BuildSettings(arches=["x86_64"])})
        wt = kernel.kernel_slot("bench-sandbox")
        ctx = kernel.series_context(wt, written(mm_series(patches)), settings, tmp, cache_dir=cache)
        ctx.sandbox = box
        start = time.monotonic()
        result = BuildCheck().run(ctx)
        seconds = time.monotonic() - start
    return {
        "seconds": round(seconds, 1),
        "variants": len(result.variants),
        "findings": len(result.findings),
        "notes": sorted({n.kind for n in result.notes}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    boxed = sandbox_for(load_settings(None, lists=[], trees=[]).sandbox, Runner())
    bare = Sandbox(enabled=False)
    calls = {"sandbox": per_call(boxed), "none": per_call(bare)}
    print(
        f"per call: sandbox {calls['sandbox'] * 1000:.1f} ms, none {calls['none'] * 1000:.1f} ms",
        flush=True,
    )
    cache = kernel.test_cache()
    kernel.kernel_git_dir()
    runs: list[dict[str, object]] = []
    for r in range(args.rounds):
        for mode, box in (("sandbox", boxed), ("none", bare)):
            out = {"mode": mode, "round": r + 1, **build_once(box, args.patches, cache)}
            runs.append(out)
            print(json.dumps(out), flush=True)
    last = {str(r["mode"]): float(r["seconds"]) for r in runs if r["round"] == args.rounds}  # type: ignore[arg-type]
    ratio = last["sandbox"] / max(0.1, last["none"])
    print(
        f"\n{args.patches} patches, x86_64, round {args.rounds}: sandbox {last['sandbox']} s, "
        f"none {last['none']} s, ratio {ratio:.3f}x; per call "
        f"{(calls['sandbox'] - calls['none']) * 1000:.1f} ms more"
    )
    if args.json:
        args.json.write_text(json.dumps({"calls": calls, "runs": runs, "ratio": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
