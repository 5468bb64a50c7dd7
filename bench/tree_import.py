"""Time `lorebot tree import` of linux-source-6.12, a worktree slot, and applying 20 patches.

Usage: .venv/bin/python bench/tree_import.py [--tarball PATH] [--workdir DIR]
Prints a table; disk use of the repository and the slot.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.runner import Runner
from bot.demo.series import DemoPatch, Edit, write_series
from bot.trees.apply import apply_series
from bot.trees.repo import Repo, Slot, tree_ref
from config.settings import load_settings
from tests.support.gitrepo import series_from_mails

MM_FILES = [
    "mm/mempool.c",
    "mm/filemap.c",
    "mm/vmscan.c",
    "mm/page_alloc.c",
    "mm/slub.c",
    "mm/memory.c",
    "mm/mmap.c",
    "mm/rmap.c",
    "mm/swap.c",
    "mm/truncate.c",
    "mm/readahead.c",
    "mm/shmem.c",
    "mm/util.c",
    "mm/vmalloc.c",
    "mm/gup.c",
    "mm/huge_memory.c",
    "mm/compaction.c",
    "mm/migrate.c",
    "mm/mlock.c",
    "mm/mprotect.c",
]


def comment_patches(wt: Path, n: int) -> list[DemoPatch]:
    """n patches, each adding a comment after the first #include of one mm file."""
    out = []
    for i, path in enumerate(MM_FILES[:n], start=1):
        text = (wt / path).read_text()
        first = next(ln for ln in text.splitlines() if ln.startswith("#include"))
        out.append(
            DemoPatch(
                f"{path.removesuffix('.c')}: note {i}",
                f"Bench patch {i}.",
                (Edit(path, first + "\n", first + f"\n/* bench note {i} */\n"),),
            )
        )
    return out


def du(path: Path) -> str:
    return subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True).stdout.split()[
        0
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tarball", type=Path, default=Path("/usr/src/linux-source-6.12.tar.xz"))
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lorebot-bench-"))
    settings = load_settings(
        None,
        paths={"state": str(work / "state"), "cache": str(work / "cache")},
        lists=[{"name": "bench", "url": "http://127.0.0.1:1/bench", "trees": ["linux"]}],
        trees=[{"name": "linux", "url": "", "branches": ["master"]}],
    )
    repo = Repo.open(settings, Runner(work / "logs"))
    rows = []
    sha, files, secs = repo.import_tarball("linux", args.tarball)
    rows.append(("tree import (fast-import of the .tar.xz)", f"{secs:.1f} s", f"{files} files"))
    t = time.monotonic()
    slot = Slot(repo, settings.paths.cache / "slots" / "0")
    slot.reset(sha)
    rows.append(("new worktree slot", f"{time.monotonic() - t:.1f} s", ""))
    t = time.monotonic()
    slot.reset(sha)
    rows.append(("reset of an existing slot", f"{time.monotonic() - t:.2f} s", ""))
    # write the series in a scratch worktree, then apply it through the slot
    scratch = work / "scratch"
    repo.git("worktree", "add", "-q", "--detach", str(scratch), tree_ref("linux", "master"))
    mailed = write_series(scratch, comment_patches(scratch, 20))
    series = series_from_mails(mailed.mails[1:], base_commit=mailed.base)
    t = time.monotonic()
    result = apply_series(settings, repo, slot, series, settings.lists[0])
    rows.append(
        (
            "apply 20 patches (git am -3 each)",
            f"{time.monotonic() - t:.1f} s",
            "ok" if result.ok else result.message,
        )
    )
    t = time.monotonic()
    slot.reset(sha)
    result = apply_series(settings, repo, slot, series, settings.lists[0])
    rows.append(
        (
            "reset + apply 20 patches again (reused slot)",
            f"{time.monotonic() - t:.1f} s",
            "ok" if result.ok else result.message,
        )
    )
    rows.append(("disk: bare repository", du(repo.git_dir), ""))
    rows.append(("disk: one worktree slot", du(slot.path), ""))
    w = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>9}  {r[2]}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
