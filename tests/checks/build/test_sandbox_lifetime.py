"""A sandboxed make dies with lorebot, and never shares its build dir with another.

Real processes: a child Python runs make as the build check does (see
tests/support/slow_make.py) on a fakelinux whose Makefile sleeps; the test
kills the child with SIGKILL, as an operator's `kill -9` of `lorebot serve`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fakelinux import fake_tree
from tests.support.kernel import git
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gcc", "ccache", "bwrap")),
    reason="needs gcc, ccache and bubblewrap",
)

REPO = Path(__file__).resolve().parents[3]


def slow_tree(dest: Path, seconds: int) -> Path:
    """fakelinux whose make logs start and end to runs.log in O= and sleeps in between."""
    wt = fake_tree(dest)
    makefile = wt / "Makefile"
    text = makefile.read_text()
    line = "else # in the object directory\n"
    makefile.write_text(
        text.replace(
            line,
            line + "$(shell echo start $$(date +%s%N) >> $(CURDIR)/runs.log; sleep "
            f"{seconds}; echo end $$(date +%s%N) >> $(CURDIR)/runs.log)\n",
        )
    )
    git(wt, "commit", "-qam", "slow")
    return wt


def start(wt: Path, odir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.slow_make", str(wt), str(odir)],
        cwd=REPO,
        start_new_session=True,  # as a service: killed alone, not with the test
    )


def makes_in(odir: Path) -> list[int]:
    """pids of processes whose command line names the build dir (make, sh, sleep...)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(odir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(int(pid))
        except OSError:
            continue
    return out


def intervals(log: Path) -> list[tuple[int, int]]:
    words = [ln.split() for ln in log.read_text().splitlines()] if log.exists() else []
    starts = [int(t) for w, t in words if w == "start"]
    ends = [int(t) for w, t in words if w == "end"]
    return list(zip(starts, ends, strict=False))


def test_kill_9_of_lorebot_leaves_no_make_running(tmp_path: Path) -> None:
    wt = slow_tree(tmp_path / "linux", 300)
    odir = tmp_path / "build" / "x86_64" / "defconfig"
    first = start(wt, odir)
    wait_for(lambda: (odir / "runs.log").exists(), 60, "make to start")
    assert makes_in(odir)
    os.killpg(first.pid, signal.SIGKILL)  # the service and nothing else
    first.wait()
    wait_for(lambda: not makes_in(odir), 10, "the killed service's make to be gone")


def test_two_makes_in_one_build_dir_take_turns(tmp_path: Path) -> None:
    wt = slow_tree(tmp_path / "linux", 2)
    odir = tmp_path / "build" / "x86_64" / "defconfig"
    runs = [start(wt, odir), start(wt, odir)]
    assert all(p.wait(timeout=120) == 0 for p in runs)
    done = intervals(odir / "runs.log")
    assert len(done) >= 2
    done.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(done))
