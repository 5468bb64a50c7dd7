"""Patch coverage of lorebot's variants against defconfig alone and allmodconfig, per series.

Usage: nice -n 10 .venv/bin/python bench/coverage.py [--mbox FILE] [--limit N]
       [--minutes M] [--arches a,b,..] [--json FILE] [--match REGEX] [--warm]
       [--cache DIR] [--head-only]

Takes the series of a month (default: ../shared/data/linux-hwmon-2024-12.mbox)
in as `bench/replay_month.py` does, and runs the latest revision of each
through lorebot's build check alone on linux-source-6.12 (the others do not
change what is compiled). For each series that applies:

- lorebot: the coverage the check reports (its variants, solver, arches from
  the diff) and the check's wall time;
- defconfig alone: x86_64 `make defconfig`, the same objects where defconfig
  builds them, coverage measured the same way (the preprocessor's line markers);
- allmodconfig: x86_64 `make allmodconfig`, the same objects, its coverage and
  wall time. It builds what lorebot builds, in one config: the base, then each
  patch (the config made again after a patch that changes Kconfig, which may add
  a new driver's symbol); `--head-only`: the base and the series' head alone.

Cold (the default): every series starts from empty build dirs and an empty
ccache, lorebot's and allmodconfig's alike. `--warm`: the service's steady
state, where build dirs and ccache stay from one series to the next, lorebot's
and allmodconfig's alike (each its own ccache); the first series pays both
warm-ups.

Prints one row per series and the means: coverage (mean, share at 100%) of
the three, the mean over the series whose changed lines all could compile
(lines behind a compile error of the series itself, "build error", are
compiled by no config), and allmodconfig's time over lorebot's. Everything
runs here, unsandboxed, on the configured tree's series: it is a measurement,
not the service. It works in its own cache (`--cache`, default
~/.cache/lorebot-bench; its kernel repository borrows the objects of the
tests' one), so it may run beside the test suite, slower for both.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from bench.replay_month import MBOX, month_inbox, replay_settings
from bot.core.results import Coverage
from bot.demo.run import ensure_tree
from bot.intake.poll import poll_once
from bot.run import claims, queue
from bot.run.worker import run_series
from checks.build.coverage import Reason, Tally, changed_lines, seen_lines, tree_path
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


def own_cache(cache: Path) -> None:
    """Work in `cache`, never in the tests' cache; its kernel repository borrows the
    objects of the tests' one (git alternates) when there is one."""
    shared = kernel.test_cache() / "git" / "kernel.git"
    os.environ["LOREBOT_TEST_CACHE"] = str(cache)
    mine = cache / "git" / "kernel.git"
    if mine.exists() or not (shared / "objects").is_dir() or shared == mine:
        return
    mine.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", str(mine)], check=True)
    (mine / "objects" / "info" / "alternates").write_text(f"{shared / 'objects'}\n")
    subprocess.run(
        ["git", "--git-dir", str(mine), "fetch", "-q", str(shared), "refs/trees/*:refs/trees/*"],
        check=True,
    )


def make(
    wt: Path, odir: Path, *args: str, ccache: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """make for x86_64 in `odir`; through ccache in `ccache` when given, else none."""
    cc = ["CC=ccache gcc", "HOSTCC=ccache gcc"] if ccache else []
    env = {**os.environ, "LC_ALL": "C"}
    env.update({"CCACHE_DIR": str(ccache)} if ccache else {"CCACHE_DISABLE": "1"})
    return subprocess.run(
        ["make", "-s", "-C", str(wt), f"O={odir}", "ARCH=x86_64", *cc, "-j2", "-k", *args],
        capture_output=True,
        text=True,
        env=env,
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
    wt: Path,
    odir: Path,
    target: str,
    commits: Sequence[str],
    objects: list[str],
    ccache: Path | None,
) -> tuple[Coverage, float, list[str]]:
    """At each commit (the base, then the series' patches): the target config where
    Kconfig changed (a new driver's symbol comes with its patch), and the objects it
    builds; coverage at the last one, wall time. `odir` is emptied first unless there is
    a ccache (warm: the build dir stays, as the ccache does)."""
    if ccache is None:
        shutil.rmtree(odir, ignore_errors=True)
    t0 = time.monotonic()
    mine: list[str] = []
    config: dict[str, str] = {}
    for i, commit in enumerate(commits):
        git(wt, "checkout", "-q", "--detach", commit)
        touched = git(wt, "diff", "--name-only", commits[i - 1], commit) if i else ""
        if not i or any(posixpath.basename(p).startswith("Kconfig") for p in touched.split()):
            make(wt, odir, target, ccache=ccache)
            config = read_config((odir / ".config").read_text())
        chains = [object_chain(o[:-2] + ".c", lambda p: _read(wt, p)) for o in objects]
        mine = [c.object for c in chains if c.found and buildable(c, config)]
        if mine:
            make(wt, odir, *mine, ccache=ccache)
    seconds = time.monotonic() - t0
    changed = changed_lines(git(wt, "diff", commits[0], commits[-1]))
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
    ap.add_argument(
        "--head-only",
        action="store_true",
        help="the configs compared build the base and the head only, not each patch",
    )
    ap.add_argument("--warm", action="store_true", help="keep build dirs and ccache between series")
    ap.add_argument(
        "--cache", type=Path, default=Path("~/.cache/lorebot-bench"), help="the bench's cache"
    )
    args = ap.parse_args()
    own_cache(args.cache.expanduser())
    if not args.mbox.exists():
        print(f"{args.mbox} missing (real archive data lives in ../shared/data)", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp(prefix="lorebot-coverage-"))
    t_start = time.monotonic()
    server = month_inbox(out, args.mbox)
    settings = bench_settings(out, server.url, args.arches.split(","))
    ensure_tree(settings, print)
    cache = kernel.test_cache()
    # both modes start from nothing: cold empties again before each series; warm keeps
    # what the series before left, the first series paying the warm-up
    # (and no step records: an earlier bench run's would be reused as a re-roll's)
    for d in [
        *cache.glob("build/linux-[0-9]*"),
        cache / "build" / "steps",
        cache / "ccache",
        cache / "bench-coverage",
    ]:
        shutil.rmtree(d, ignore_errors=True)
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
            # cold: no build dir of the pipeline's slots (build/linux-<n>) and no
            # compiler cache from an earlier series
            for d in [] if args.warm else [*cache.glob("build/linux-[0-9]*"), cache / "ccache"]:
                shutil.rmtree(d, ignore_errors=True)
            with claims.held(worker):
                result = run_series(settings, db, sid, worker, queue_mail=False)
            o = result.outcome if result else None
            if not o or not o.applied.ok or o.coverage is None or not o.coverage.lines:
                continue
            base = o.applied.base
            steps = [p.commit for p in o.applied.patches if p.commit]
            commits = [base, *(steps[-1:] if args.head_only else steps)]
            objects = sorted({ob for v in o.variants if v.arch == "x86_64" for ob in v.objects})
            objects += [
                ob
                for v in o.dropped
                for ob in v.objects
                if v.arch == "x86_64" and ob not in objects
            ]
            others = {}
            for target in ("defconfig", "allmodconfig"):
                where = cache / "bench-coverage" if args.warm else out
                others[target] = other_config(
                    wt,
                    where / target,
                    target,
                    commits,
                    objects,
                    where / f"ccache-{target}" if args.warm else None,
                )
            d_cov, a_cov, a_sec = others["defconfig"][0], *others["allmodconfig"][:2]
            failed = sum(
                len(u.lines) for u in o.coverage.uncovered if u.reason == str(Reason.BUILD_ERROR)
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
                "build_error_lines": failed,
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

    def mean(key: str, of: list[dict[str, object]] = rows) -> float:
        return round(sum(float(str(r[key])) for r in of) / len(of), 2) if of else 0.0

    def full(key: str) -> float:
        return round(100.0 * sum(1 for r in rows if float(str(r[key])) >= 100.0) / len(rows), 1)

    compiles = [r for r in rows if not r["build_error_lines"]]
    lb = sum(float(str(r["lorebot_seconds"])) for r in rows)
    am = sum(float(str(r["allmodconfig_seconds"])) for r in rows)
    totals = {
        "series": len(rows),
        "mean_coverage": {k: mean(k) for k in ("lorebot", "defconfig", "allmodconfig")},
        "share_at_100": {k: full(k) for k in ("lorebot", "defconfig", "allmodconfig")},
        "series_without_build_errors": len(compiles),
        "mean_coverage_without_build_errors": {
            k: mean(k, compiles) for k in ("lorebot", "defconfig", "allmodconfig")
        },
        "mode": "warm" if args.warm else "cold",
        "compared_steps": "base and head" if args.head_only else "base and each patch",
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
