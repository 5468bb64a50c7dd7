"""A series on tests/fakelinux that builds on four arches (x86_64, i386, arm64, powerpc
with Debian's cross compilers): the input of the scale-out tests, in seconds."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.fakelinux import fake_tree
from tests.support.kernel import WrittenPatch, git, replace_in

ARCHES = ["x86_64", "i386", "arm64", "powerpc"]
PRESETS = {"powerpc": "defconfig"}  # fakelinux has no pseries_defconfig
COMPILERS = ("gcc", "aarch64-linux-gnu-gcc", "powerpc64le-linux-gnu-gcc", "ccache", "make")
MISSING = [c for c in COMPILERS if shutil.which(c) is None]

# a reworded comment, a W=1 warning at patch 2, an error only with FOO=n at patch 3
PATCHES = [
    WrittenPatch(
        "mm/core: reword a comment",
        [replace_in("mm/core.c", "part of the base", "kept in the base")],
    ),
    WrittenPatch(
        "mm/bar: note what was seen",
        [replace_in("mm/bar.c", "\tint i;\n\n", "\tint i, seen;\n\n\tseen = 0;\n")],
    ),
    WrittenPatch(
        "mm/core: start from the first foo",
        [
            replace_in(
                "mm/core.c", "\treturn foo_count();\n", "\treturn foo_get(0) + foo_count();\n"
            )
        ],
    ),
]


def four_arch_tree(dest: Path) -> Path:
    """fakelinux with a defconfig for arm64 and powerpc too, committed as the base."""
    fake_tree(dest)
    for arch in ("arm64", "powerpc"):
        d = dest / "arch" / arch / "configs"
        d.mkdir(parents=True)
        shutil.copy(dest / "arch/x86/configs/defconfig", d / "defconfig")
    git(dest, "add", "-A")
    git(
        dest, "-c", "user.name=Base", "-c", "user.email=base@example.org", "commit", "-qm", "arches"
    )
    return dest
