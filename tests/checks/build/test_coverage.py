"""Patch coverage from the preprocessor's line markers (checks/build/coverage.py).

The branches a line sits in are read without evaluating them; which of them
were compiled comes from real `gcc -E -C -dD` output, and the result must be
exactly the lines gcc kept.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bot.core.results import line_ranges
from checks.build.coverage import (
    Reason,
    Tally,
    active_lines,
    blocks,
    changed_lines,
    reason_for,
    seen_lines,
    tree_path,
)
from checks.build.preprocess import preprocess_argv, saved_command

SOURCE = """\
#include "local.h"
/* a comment with #if inside
#if 0
*/
#ifdef CONFIG_ON
int on_side(void)
{
	return LOCAL;
}
#else
int off_side(void);
#endif

#if defined(CONFIG_OFF) || defined(CONFIG_ON)
#define EITHER 1
#ifdef CONFIG_OFF
/* only with OFF */
#endif
#endif

#if 0
int never(void);
#elif defined(CONFIG_OFF)
int elif_off(void);
#else
int neither(int a,
		int b);
#endif
int after(void);
"""


def _preprocess(tmp_path: Path, defines: list[str]) -> set[int]:
    """Lines of SOURCE compiled with the given -D flags, by the module's reading of gcc."""
    (tmp_path / "local.h").write_text("#define LOCAL 3\n")
    src = tmp_path / "a.c"
    src.write_text(SOURCE)
    argv = ["gcc", *defines, "-c", "-o", "a.o", str(src)]
    out = tmp_path / "a.i"
    subprocess.run(preprocess_argv(argv, str(out)), cwd=tmp_path, check=True)
    seen = seen_lines(out.read_text(), lambda n: tree_path(n, str(tmp_path), str(tmp_path)))
    assert "local.h" in seen
    return active_lines(SOURCE, seen["a.c"])


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_compiled_lines_are_exactly_the_active_branches(tmp_path: Path) -> None:
    every = set(range(1, 30))
    on = _preprocess(tmp_path, ["-DCONFIG_ON=1"])
    assert every - on == {11, 17, 22, 24}  # off side, OFF-only comment, #if 0, elif OFF
    off = _preprocess(tmp_path, ["-DCONFIG_OFF=1"])
    assert every - off == {6, 7, 8, 9, 22, 26, 27}  # ON side, #if 0, the #else
    neither = _preprocess(tmp_path, [])
    # the ||-block has only a #define and a nested #if in it: all of it off
    assert every - neither == {6, 7, 8, 9, *range(15, 19), 22, 24}


def test_branches_ignore_directives_in_comments() -> None:
    b = blocks(SOURCE)
    assert b.line(3) == b.line(1) == 0  # "#if 0" in a comment is no directive
    assert b.line(5) == 0 and b.line(6) != 0 and b.line(11) not in (0, b.line(6))
    assert b.line(12) == 0  # #endif belongs to the outside
    assert b.parent[b.line(17)] == b.line(15)


def test_changed_lines_are_added_lines_of_c_and_h_files() -> None:
    diff = """\
diff --git a/mm/a.c b/mm/a.c
--- a/mm/a.c
+++ b/mm/a.c
@@ -1,3 +1,4 @@
 one
-two
+deux
+trois
 four
diff --git a/mm/Kconfig b/mm/Kconfig
--- a/mm/Kconfig
+++ b/mm/Kconfig
@@ -1 +1 @@
-x
+y
"""
    assert changed_lines(diff) == {"mm/a.c": [2, 3]}


def test_tally_counts_a_line_once_over_several_configs() -> None:
    text = "#ifdef CONFIG_A\na\n#else\nb\n#endif\n"
    t = Tally({"x.h": [2, 4]})
    t.add("x.h", text, {2})
    assert t.missing("x.h") == [4] and not t.complete
    t.add("x.h", text, {4})
    assert t.complete


def test_reasons_and_ranges() -> None:
    def why(path: str, **kw: object) -> Reason:
        args: dict[str, object] = {
            "built_srcarches": ["x86"],
            "included": False,
            "dropped_for_budget": False,
            "own_object": False,
        }
        return reason_for(path, **{**args, **kw})  # type: ignore[arg-type]

    assert why("arch/powerpc/a.c", own_object=True) is Reason.ARCH
    assert why("arch/x86/a.c", own_object=True) is Reason.UNSATISFIABLE
    assert why("include/linux/a.h") is Reason.NO_USER
    assert why("include/linux/a.h", dropped_for_budget=True) is Reason.BUDGET
    assert why("drivers/rtc/a.c", own_object=True, broken=True) is Reason.BUILD_ERROR
    assert line_ranges([9, 3, 4, 5]) == "3-5,9"


def test_saved_kbuild_command_becomes_a_preprocessing_one() -> None:
    text = (
        "savedcmd_mm/a.o := ccache gcc -Wp,-MMD,mm/.a.o.d -nostdinc "
        "-DKBUILD_BASENAME='\"a\"' -c -o mm/a.o /src/mm/a.c   ; ./tools/objtool/objtool --x\n"
        "source_mm/a.o := /src/mm/a.c\n"
    )
    argv = saved_command(text)
    assert argv is not None
    assert preprocess_argv(argv, "mm/a.o.i") == [
        "gcc",
        "-nostdinc",
        '-DKBUILD_BASENAME="a"',
        "/src/mm/a.c",
        "-E",
        "-C",
        "-dD",
        "-o",
        "mm/a.o.i",
    ]
