"""Patch coverage of lorebot's variants against defconfig alone and allmodconfig, per series.

Usage: nice -n 10 .venv/bin/python bench/coverage.py [--mbox FILE] [--limit N]
       [--minutes M] [--arches a,b,..] [--json FILE] [--match REGEX]

Takes the series of a month (default: ../shared/data/linux-hwmon-2024-12.mbox)
in as `bench/replay_month.py` does, and runs the latest revision of each
through lorebot's build check alone on linux-source-6.12 (the others do not
change what is compiled). For each series that applies:

- lorebot: the coverage the check reports (its variants, solver, arches from
  the diff) and the check's wall time, from cold build dirs and a cold ccache;
- defconfig alone: x86_64 `make defconfig`, the same objects where defconfig
  builds them, coverage measured the same way (the preprocessor's line markers);
- allmodconfig: x86_64 `make allmodconfig`, the same objects, its coverage and
  wall time (config, the objects at the base, then at the series' head, as the
  check does; no ccache).

Prints one row per series and the means: coverage (mean, share at 100%) of
the three, and allmodconfig's time over lorebot's. Everything runs here,
unsandboxed, on the configured tree's series: it is a measurement, not the
service. It works in the test cache (LOREBOT_TEST_CACHE) and empties its
pipeline build dirs and ccache before each series: never run it beside the
test suite on the same cache.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from bench.replay_month import MBOX, month_inbox, replay_settings
from bot.core.results import Coverage
from bot.demo.run import ensure_tree
from bot.intake.poll import poll_once
from bot.run import claims, queue
from bot.run.worker import run_series
from checks.build.coverage import Tally, changed_lines, seen_lines, tree_path
from checks.build.kbuild import object_chain
from checks.build.preprocess import cmd_file, preprocess_argv, saved_command
from checks.build.variants import buildable, read_config
from config.settings import Settings
from state.db import Database
from state.models import SeriesRow
from tests.support import kernel


def bench_settings(out: Path, url: str, arches: list[str]) -> Settings:
    """replay_month's settings with the build check alone (the others compile nothing)."""
    settings = replay_settings(out, url, arches)
    return settings.model_copy(
        update={"checks": settings.checks.model_copy(update={"enabled": ["build"]})}
    )


def git(wt: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(wt), *args], check=True, capture_output=True, text=True
    ).stdout


def make(wt: Path, odir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "-C", str(wt), f"O={odir}", "ARCH=x86_64", "-j2", "-k", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CCACHE_DISABLE": "1", "LC_ALL": "C"},
    )


def measure(wt: Path, odir: Path, objects: list[str], changed: dict[str, list[int]]) -> Coverage:
    """Coverage of the changed lines by the objects built in `odir` (at the head)."""
    tally = Tally(changed)
    texts: dict[str, str] = {}
    for obj in objects:
        cmd = cmd_file(odir, obj)
        argv = saved_command(cmd.read_text()) if cmd.exists() else None
        if not argv:
            continue
        out = odir / (obj + ".bench.i")
        subprocess.run(preprocess_argv(argv, str(out)), cwd=odir, capture_output=True)
        if not out.exists():
            continue
        seen = seen_lines(
            out.read_text(errors="replace"), lambda n: tree_path(n, str(wt), str(odir))
        )
        out.unlink()
        for path, lines in seen.items():
            if path in changed:
                texts.setdefault(path, (wt / path).read_text(errors="replace"))
                tally.add(path, texts[path], lines)
    total = sum(len(v) for v in changed.values())
    covered = sum(len(v) - len(tally.missing(p)) for p, v in changed.items())
    return Coverage(lines=total, covered=covered)


def other_config(
    wt: Path, odir: Path, target: str, base: str, head: str, objects: list[str]
) -> tuple[Coverage, float, list[str]]:
    """Config, objects at the base, then at the head; coverage at the head, wall time."""
    shutil.rmtree(odir, ignore_errors=True)
    t0 = time.monotonic()
    git(wt, "checkout", "-q", "--detach", base)
    make(wt, odir, target)
    config = read_config((odir / ".config").read_text())
    chains = [object_chain(o[:-2] + ".c", lambda p: _read(wt, p)) for o in objects]
    mine = [c.object for c in chains if c.found and buildable(c, config)]
    if mine:
        make(wt, odir, *mine)
        git(wt, "checkout", "-q", "--detach", head)
        make(wt, odir, *mine)
    else:
        git(wt, "checkout", "-q", "--detach", head)
    seconds = time.monotonic() - t0
    changed = changed_lines(git(wt, "diff", base, head))
    return measure(wt, odir, mine, changed), seconds, mine


def _read(wt: Path, path: str) -> str | None:
    try:
        return (wt / path).read_text(errors="replace")
    except OSError:
        return None


def pct(c: Coverage) -> float:
    return round(c.percent, 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mbox", type=Path, default=MBOX)
    ap.add_argument("--limit", type=int, default=0, help="stop after N series that apply")
    ap.add_argument("--minutes", type=float, default=0, help="start no series after M minutes")
    ap.add_argument("--arches", default="x86_64")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--match", default="", help="only series whose subject has this regex")
    args = ap.parse_args()
    if not args.mbox.exists():
        print(f"{args.mbox} missing (real archive data lives in ../shared/data)", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp(prefix="lorebot-coverage-"))
    t_start = time.monotonic()
    server = month_inbox(out, args.mbox)
    settings = bench_settings(out, server.url, args.arches.split(","))
    ensure_tree(settings, print)
    cache = kernel.test_cache()
    wt = kernel.kernel_slot("bench-coverage")
    db = Database(settings.database_url)
    rows: list[dict[str, object]] = []
    try:
        poll_once(settings, db)
        with db.session() as s:
            todo = [
                r.id
                for r in s.scalars(select(SeriesRow).order_by(SeriesRow.id))
                if r.state == "queued" and re.search(args.match, r.subject or "")
            ]
        worker = claims.holder_name("bench")
        for sid in todo:
            if args.limit and len(rows) >= args.limit:
                break
            if args.minutes and time.monotonic() - t_start > args.minutes * 60:
                print(f"stopped after {args.minutes:g} minutes (--minutes)", flush=True)
                break
            if not queue.claim(db, sid, worker):
                continue
            # cold: no build dir of the pipeline's slots (build/linux-<n>; the tests' are
            # named) and no compiler cache from an earlier series
            for d in [*cache.glob("build/linux-[0-9]*"), cache / "ccache"]:
                shutil.rmtree(d, ignore_errors=True)
            with claims.held(worker):
                result = run_series(settings, db, sid, worker, queue_mail=False)
            o = result.outcome if result else None
            if not o or not o.applied.ok or o.coverage is None or not o.coverage.lines:
                continue
            base = o.applied.base
            head = next(p.commit for p in reversed(o.applied.patches) if p.commit)
            assert head is not None
            objects = sorted({ob for v in o.variants if v.arch == "x86_64" for ob in v.objects})
            objects += [
                ob
                for v in o.dropped
                for ob in v.objects
                if v.arch == "x86_64" and ob not in objects
            ]
            d_cov, _, _ = other_config(wt, out / "defconfig", "defconfig", base, head, objects)
            a_cov, a_sec, _ = other_config(
                wt, out / "allmodconfig", "allmodconfig", base, head, objects
            )
            lb_sec = o.timings.get("build", 0.0)
            row = {
                "subject": o.series.subject,
                "lines": o.coverage.lines,
                "lorebot": pct(o.coverage),
                "defconfig": pct(d_cov),
                "allmodconfig": pct(a_cov),
                "lorebot_seconds": lb_sec,
                "allmodconfig_seconds": round(a_sec, 1),
                "variants": len(o.variants),
                "uncovered": [u.model_dump(mode="json") for u in o.coverage.uncovered],
            }
            rows.append(row)
            print(
                f"{len(rows):>3} lines={row['lines']:<4} lorebot={row['lorebot']:>6}% "
                f"defconfig={row['defconfig']:>6}% allmodconfig={row['allmodconfig']:>6}% "
                f"time lorebot={lb_sec:.0f}s allmodconfig={a_sec:.0f}s "
                f"variants={row['variants']}  {str(row['subject'])[:50]}",
                flush=True,
            )
    finally:
        server.stop()
        db.dispose()
    if not rows:
        print("no series applied")
        return 1

    def mean(key: str) -> float:
        return round(sum(float(str(r[key])) for r in rows) / len(rows), 2)

    def full(key: str) -> float:
        return round(100.0 * sum(1 for r in rows if float(str(r[key])) >= 100.0) / len(rows), 1)

    lb = sum(float(str(r["lorebot_seconds"])) for r in rows)
    am = sum(float(str(r["allmodconfig_seconds"])) for r in rows)
    totals = {
        "series": len(rows),
        "mean_coverage": {k: mean(k) for k in ("lorebot", "defconfig", "allmodconfig")},
        "share_at_100": {k: full(k) for k in ("lorebot", "defconfig", "allmodconfig")},
        "seconds": {"lorebot": round(lb, 1), "allmodconfig": round(am, 1)},
        "allmodconfig_over_lorebot": round(am / lb, 2) if lb else None,
        "minutes": round((time.monotonic() - t_start) / 60, 1),
    }
    print("\n" + json.dumps(totals, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "totals": totals}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
