"""kernel-doc on the real tree: new warnings only, a moved warning is not new."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.kerneldoc import DocWarning, KernelDocCheck, new_warnings, parse_warnings
from config.settings import Settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

M = "mm/migrate.c"
GOOD = """#include "internal.h"

/**
 * migrate_debug_count - count pages for debugging
 * @n: how many pages
 *
 * Return: the new total.
 */
static inline unsigned long migrate_debug_count(unsigned long n)
{
\treturn n;
}
"""
BAD = """#include "internal.h"

/**
 * migrate_debug_total - total of the debug counter
 */
static inline unsigned long migrate_debug_total(unsigned long n)
{
\treturn n;
}
"""


def test_parse_and_compare_without_line_numbers() -> None:
    out = (
        "mm/a.c:10: warning: No description found for return value of 'f'\n"
        "noise\nmm/a.c:30: warning: Function parameter or struct member 'n' not described "
        "in 'g'\n"
    )
    warns = parse_warnings(out)
    assert [w.line for w in warns] == [10, 30]
    moved = [DocWarning("mm/a.c", 15, warns[0].message)]
    # base, after patch 1 (moved only), after patch 2 (one new)
    versions = [(0, [warns[0]]), (1, moved), (2, [*moved, warns[1]])]
    assert new_warnings(versions) == [(2, warns[1])]
    # appears in 1, fixed in 2, back in 3: attributed to 3
    assert new_warnings([(0, []), (1, [warns[1]]), (2, []), (3, [warns[1]])]) == [(3, warns[1])]


@pytest.mark.kernel
def test_new_kernel_doc_warnings_only(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    wt = kernel.kernel_slot("semantic")
    ctx = kernel.series_context(
        wt,
        [
            WrittenPatch(
                "mm/migrate: add a documented helper",
                [replace_in(M, '#include "internal.h"\n', GOOD)],
            ),
            WrittenPatch(
                "mm/migrate: add a badly documented helper",
                [replace_in(M, '#include "internal.h"\n', BAD)],
            ),
        ],
        settings,
        tmp_path,
    )
    try:
        findings = list(KernelDocCheck().run(ctx).findings)
    finally:
        kernel.git(wt, "reset", "-q", "--hard", kernel.REF)
    assert findings, "expected the new warnings of patch 2"
    assert all(f.patch == 2 and f.file == M for f in findings)
    assert all("migrate_debug_total" in f.message for f in findings)
    assert {f.check for f in findings} == {"kernel-doc"}
    assert all(f.severity == "warning" and f.kind == "kernel-doc" for f in findings)
    # the base's warnings about migrate_movable_ops_page/migrate_folio moved, still not new
    assert not any("migrate_movable_ops_page" in f.message for f in findings)
    assert not any("'migrate_folio'" in f.message for f in findings)
    first = findings[0]
    assert first.line and "migrate_debug_total" in first.excerpt
    # the mail tells how to see it again, run from the top of the tree
    assert first.reproduce == (f"./scripts/kernel-doc -none -Wall {M}",)
