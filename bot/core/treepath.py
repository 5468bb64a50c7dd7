"""Whether a path a tool printed names a file inside the tree (pure but for lstat).

A compiler diagnostic may name any file the build could read (`#include
"/etc/hostname"`, `../../x`, a symlink in the tree): its lines are quoted in a
reply only when the file is a regular file inside the worktree, reached without
following a symlink.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

OUTSIDE = "(a file outside the source tree)"


def escapes(root: Path, name: str) -> bool:
    """`name` leads out of `root`: absolute, through "..", or through a symlink in it."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        return True
    here = root
    for part in p.parts:
        here = here / part
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return True
        except OSError:
            return False  # not in the tree (a generated file of the build dir)
    return False


def inside(root: Path, name: str) -> Path | None:
    """`root/name` when `name` is a relative path to a regular file in `root`, no symlink on
    the way; else None."""
    p = PurePosixPath(name)
    if not name or p.is_absolute() or any(part in ("..", "") for part in p.parts):
        return None
    here = root
    for part in p.parts:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return None
    return here if stat.S_ISREG(mode) else None
