"""tests/fakelinux as a git work tree: the build check's input without the kernel.

The tree (a top Makefile honouring O=, defconfig, olddefconfig and W=1, a
Kconfig, scripts/config, mm/*.c and include/linux/*.h) builds in well under a
second; series are written on it with `kernel.series_context`, as on the real tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.kernel import git

SOURCE = Path(__file__).resolve().parent.parent / "fakelinux"


def fake_tree(dest: Path) -> Path:
    """A fresh copy of tests/fakelinux at `dest`, committed as the base of a series."""
    shutil.copytree(SOURCE, dest, symlinks=True)
    git(dest, "init", "-q", "-b", "master")
    git(dest, "add", "-A")
    git(
        dest,
        "-c",
        "user.name=Base",
        "-c",
        "user.email=base@example.org",
        "commit",
        "-q",
        "-m",
        "fakelinux",
    )
    return dest
