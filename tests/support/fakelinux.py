"""tests/fakelinux as a git work tree: the build check's input without the kernel.

The tree (a top Makefile honouring O=, defconfig, olddefconfig and W=1, a
Kconfig, scripts/config, mm/*.c and include/linux/*.h) builds in well under a
second; series are written on it with `kernel.series_context`, as on the real tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.kernel import Edit, WrittenPatch, git, replace_in

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


def _new_file(path: str, text: str) -> Edit:
    def edit(wt: Path) -> None:
        (wt / path).write_text(text)

    return edit


GAUGE_KCONFIG = (
    "config GAUGE\n"
    '\tbool "Quux gauges"\n'
    "\tdepends on QUUX\n"
    "\thelp\n"
    "\t  A driver the series adds, on a symbol the defconfig does not have.\n"
    "\n"
    "config FOO_STATS\n"
    '\tbool "Foo statistics"\n'
    "\tdepends on FOO\n"
)

GAUGE_C = """\
#include <linux/quux.h>

int gauge_read(void)
{
	int raw, unused;

	raw = quux_level();
	unused = raw;
	return raw;
}
"""


def gauge_series() -> list[WrittenPatch]:
    """A series that adds Kconfig symbols: a driver behind GAUGE (which needs QUUX, off in
    the defconfig), with a W=1 warning, then an #ifdef on FOO_STATS in mm/foo.c."""
    return [
        WrittenPatch(
            "mm: add the gauge driver",
            [
                replace_in("mm/Kconfig", "config NEVER", GAUGE_KCONFIG + "\nconfig NEVER"),
                replace_in(
                    "mm/Makefile",
                    "obj-y += core.o\n",
                    "obj-y += core.o\nobj-$(CONFIG_GAUGE) += gauge.o\n",
                ),
                _new_file("mm/gauge.c", GAUGE_C),
            ],
        ),
        WrittenPatch(
            "mm/foo: count reads with FOO_STATS",
            [
                replace_in(
                    "mm/foo.c",
                    "\treturn foo_items[id & 3];",
                    "#ifdef CONFIG_FOO_STATS\n\tfoo_items[0]++;\n#endif\n"
                    "\treturn foo_items[id & 3];",
                )
            ],
        ),
    ]


# patches every fakelinux series test may use
REWORD = WrittenPatch(
    "mm/core: reword a comment",
    [replace_in("mm/core.c", "part of the base", "kept in the base")],
)
UNUSED_SEEN = WrittenPatch(  # a W=1 warning (set but not used)
    "mm/bar: note what was seen",
    [replace_in("mm/bar.c", "\tint i;\n\n", "\tint i, seen;\n\n\tseen = 0;\n")],
)
