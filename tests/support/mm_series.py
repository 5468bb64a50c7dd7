"""The mm series of the benches and the golden test, written on linux-source-6.12.

Patch i adds a note to the end of one mm file, in a way checkpatch complains
about (a comment line past 100 columns: WARNING; two blank lines: CHECK);
patch 6 calls folio_migrate_flags(), declared only with CONFIG_MIGRATION, from
mm/filemap.c (a build break with MIGRATION=n); patch 10 sets a variable it
never reads (a W=1 warning). Only those two are problems of the build.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.demo.series import DemoPatch, Edit
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

MM_FILES = [
    "mm/filemap.c",
    "mm/readahead.c",
    "mm/swap.c",
    "mm/vmscan.c",
    "mm/page_alloc.c",
    "mm/mempool.c",
    "mm/truncate.c",
    "mm/util.c",
    "mm/balloon_compaction.c",
    "mm/zsmalloc.c",
    "mm/rmap.c",
    "mm/mmap.c",
    "mm/shmem.c",
    "mm/migrate.c",
    "mm/compaction.c",
    "mm/memory.c",
    "mm/gup.c",
    "mm/mlock.c",
    "mm/mprotect.c",
    "mm/slub.c",
]

MIGRATION_BREAK = DemoPatch(
    "mm/filemap: copy flags on removal",
    "Keep the folio's flags in step when it leaves the page cache.",
    (
        Edit(
            "mm/filemap.c",
            "\tBUG_ON(!folio_test_locked(folio));\n\tspin_lock(&mapping->host->i_lock);",
            "\tBUG_ON(!folio_test_locked(folio));\n\tfolio_migrate_flags(folio, folio);\n"
            "\tspin_lock(&mapping->host->i_lock);",
        ),
    ),
)
W1_WARNING = DemoPatch(
    "mm/readahead: count pages",
    "Count the pages asked for, to report them later.",
    (
        Edit(
            "mm/readahead.c",
            "\tunsigned int min_nrpages = mapping_min_folio_nrpages(mapping);\n\n",
            "\tunsigned int min_nrpages = mapping_min_folio_nrpages(mapping);\n"
            "\tunsigned long counted;\n\n\tcounted = nr_to_read;\n",
        ),
    ),
)


def read_base(path: str) -> str:
    """A file of the imported tree as it is at the base."""
    return kernel.git(kernel.kernel_git_dir(), "show", f"{kernel.REF}:{path}")


def mm_series(n: int, read: Callable[[str], str] = read_base) -> list[DemoPatch]:
    """n mm patches: notes checkpatch warns about, one MIGRATION=n break (patch 6), one
    W=1 warning (patch 10)."""
    out = []
    for i in range(1, n + 1):
        path = MM_FILES[(i - 1) % len(MM_FILES)]
        tail = read(path)[-120:]
        note = (
            f"\n\n/* lorebot bench: note {i} on {path}, long enough to run past the hundred "
            "columns that checkpatch allows */\n"
        )
        out.append(DemoPatch(f"{path}: note {i}", f"Note {i}.", (Edit(path, tail, tail + note),)))
    if n >= 6:
        out[5] = MIGRATION_BREAK
    if n >= 10:
        out[9] = W1_WARNING
    return out


def written(patches: Sequence[DemoPatch]) -> list[WrittenPatch]:
    """The same patches as `kernel.series_context` writes them (the benches' input)."""
    return [
        WrittenPatch(p.subject, [replace_in(e.path, e.old, e.new) for e in p.edits])
        for p in patches
    ]
