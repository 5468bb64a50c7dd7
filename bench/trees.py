"""Trees benchmark: a forced sync with no news and with one new commit, a base fetched by
sha, and `lorebot gc` on a cache of many build dirs.

Usage: LOREBOT_TEST_CACHE=... .venv/bin/python bench/trees.py [--repeat 5] [--build-dirs 400]

The served tree is the imported linux-source-6.12 commit (tests/support/kernel.py) in a
bare repository behind `git daemon` on loopback, borrowing the imported objects; the
mirror is a fresh bare repository borrowing them too (as a long-running mirror holds
them). Times are the median of --repeat runs, in seconds.
1. sync, no news: Repo.sync of the tree when nothing moved.
2. sync, one new commit: a commit changing one file is added upstream first.
3. base fetch by sha: a commit on an unconfigured branch, fetched by its id.
4. gc: --build-dirs build dirs (each 30 files, 8 KiB) in a temporary cache; a dry run,
   then a pass whose quota keeps half of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build-dirs", type=int, default=400)
    args = parser.parse_args()

    from bot.core.runner import Runner
    from bot.run.gc import collect
    from bot.trees.fetchsha import fetch_commit
    from bot.trees.repo import Repo
    from config.settings import NetworkSettings, load_settings
    from tests.support import kernel
    from tests.support.gitserver import (
        GitDaemon,
        bare_git,
        borrowed_tree,
        commit_files,
    )

    kgit = kernel.kernel_git_dir()
    k = bare_git(kgit, "rev-parse", kernel.REF).strip()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="lorebot-bench-trees-") as tmp:
        root = Path(tmp) / "served"
        up = borrowed_tree(root / "up.git", kgit, "master", k)
        mirror = borrowed_tree(Path(tmp) / "mirror.git", kgit, "unused", k)
        daemon = GitDaemon(root)
        daemon.start()
        try:
            settings = load_settings(
                None,
                paths={"state": f"{tmp}/state", "cache": f"{tmp}/cache"},
                lists=[],
                trees=[{"name": "up", "url": daemon.url("up.git"), "branches": ["master"]}],
            )
            repo = Repo(mirror, Runner())
            tree = settings.tree("up")
            net = NetworkSettings()
            repo.sync(tree, net)  # the first sync: refs only, the objects are shared

            def timed(fn: object) -> float:
                t0 = time.monotonic()
                fn()  # type: ignore[operator]
                return time.monotonic() - t0

            none = [timed(lambda: repo.sync(tree, net)) for _ in range(args.repeat)]
            one = []
            fetched = []
            head = k
            for i in range(args.repeat):
                head = commit_files(up, head, {f"mm/bench-{i}.c": f"int b{i};\n"}, f"bench {i}")
                bare_git(up, "update-ref", "refs/heads/master", head)
                one.append(timed(lambda: repo.sync(tree, net)))
                assert repo.branch_sha("up", "master") == head
                side = commit_files(up, head, {f"mm/side-{i}.c": f"int s{i};\n"}, f"side {i}")
                bare_git(up, "update-ref", f"refs/heads/side-{i}", side)
                fetched.append(timed(lambda: fetch_commit(repo, side, [tree], net)))  # noqa: B023
                assert repo.resolve(side)
            out["sync_no_news_s"] = round(statistics.median(none), 3)
            out["sync_one_commit_s"] = round(statistics.median(one), 3)
            out["fetch_by_sha_s"] = round(statistics.median(fetched), 3)
        finally:
            daemon.stop()

        cache = Path(tmp) / "gc-cache"
        blob = b"x" * 8192
        for n in range(args.build_dirs):
            d = cache / "build" / f"t-{n % 4}" / f"arch{n}"
            d.mkdir(parents=True)
            for f in range(30):
                (d / f"o{f}.o").write_bytes(blob)
            (d.with_name(d.name + ".lock")).touch()
        gc_settings = load_settings(
            None, paths={"state": f"{tmp}/gc-state", "cache": str(cache)}, lists=[], trees=[]
        )
        t0 = time.monotonic()
        dry = collect(gc_settings, dry_run=True, quota=1)
        out["gc_dry_run_s"] = round(time.monotonic() - t0, 3)
        t0 = time.monotonic()
        real = collect(gc_settings, quota=dry.total_before // 2)
        out["gc_half_s"] = round(time.monotonic() - t0, 3)
        out["gc_build_dirs"] = args.build_dirs
        out["gc_evicted"] = len(real.evicted)
        out["gc_bytes_before"] = real.total_before
        out["gc_bytes_after"] = real.total_after
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
