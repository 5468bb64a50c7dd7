"""Semantic-check benchmark: a 20-patch series on the full linux-source-6.12 tree.

Usage: .venv/bin/python bench/semantic.py [--repeat N]

Writes the series (the six test patches of tests/support/semantic_series.py
plus fourteen more: real rule cases in fs/, mm/ and drivers/, near misses and
clean patches) in its own worktree slot, times the whole semantic pass, and
prints precision and recall per rule against the hand-checked expected
findings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.results import Finding
from checks.semantic import SemanticCheck
from config.settings import load_settings
from tests.support import kernel
from tests.support import semantic_series as s
from tests.support.kernel import WrittenPatch, replace_in
from tests.support.semantic_series import match

FS = "include/linux/fs.h"
ZS = "mm/zsmalloc.c"
ZS_H = "include/linux/zsmalloc.h"
ZRAM = "drivers/block/zram/zram_drv.c"
MIG_H = "include/linux/migrate.h"


def more_patches() -> list[WrittenPatch]:
    """Patches 7-20."""
    return [
        WrittenPatch(
            "fs: drop ->launder_folio",
            [replace_in(FS, "\tint (*launder_folio)(struct folio *);\n", "")],
        ),
        WrittenPatch(
            "fs: drop ->swap_rw",
            [replace_in(FS, "\tint (*swap_rw)(struct kiocb *iocb, struct iov_iter *iter);\n", "")],
        ),
        WrittenPatch(
            "mm/zsmalloc: drop the pool name",
            [replace_in(ZS, "struct zs_pool {\n\tconst char *name;\n", "struct zs_pool {\n")],
        ),
        WrittenPatch(
            "mm/migrate: isolate_folio_to_list takes lru",
            [
                replace_in(
                    MIG_H,
                    "bool isolate_folio_to_list(struct folio *folio, struct list_head *list);",
                    "bool isolate_folio_to_list(struct folio *folio, "
                    "struct list_head *list, bool lru);",
                )
            ],
        ),
        WrittenPatch(
            "mm/migrate: rename a parameter",
            [
                replace_in(
                    MIG_H,
                    "struct folio *alloc_migration_target(struct folio *src, "
                    "unsigned long private);",
                    "struct folio *alloc_migration_target(struct folio *src, unsigned long priv);",
                ),
                replace_in(
                    MIG_H,
                    "static inline struct folio *alloc_migration_target("
                    "struct folio *src,\n\t\tunsigned long private)",
                    "static inline struct folio *alloc_migration_target("
                    "struct folio *src,\n\t\tunsigned long priv)",
                ),
            ],
        ),
        WrittenPatch(
            "sched: comment",
            [
                replace_in(
                    "kernel/sched/core.c",
                    " *  Core kernel CPU scheduler code",
                    " *  Core kernel scheduler code",
                )
            ],
        ),
        WrittenPatch(
            "mm/page_alloc: comment",
            [
                replace_in(
                    "mm/page_alloc.c",
                    " *  Manages the free list, the system allocates free pages here.",
                    " *  Manages the free lists; pages are allocated here.",
                )
            ],
        ),
        WrittenPatch(
            "mm/zsmalloc: rename zs_lookup_class_index",
            [
                replace_in(ZS_H, "zs_lookup_class_index(", "zs_class_index("),
                replace_in(
                    ZS, "unsigned int zs_lookup_class_index(", "unsigned int zs_class_index("
                ),
                replace_in(
                    ZS,
                    "EXPORT_SYMBOL_GPL(zs_lookup_class_index);",
                    "EXPORT_SYMBOL_GPL(zs_class_index);",
                ),
            ],
        ),
        WrittenPatch(
            "mm/zsmalloc: zs_compact can be asynchronous",
            [
                replace_in(
                    ZS_H,
                    "unsigned long zs_compact(struct zs_pool *pool);",
                    "unsigned long zs_compact(struct zs_pool *pool, bool sync);",
                ),
                replace_in(
                    ZS,
                    "unsigned long zs_compact(struct zs_pool *pool)\n",
                    "unsigned long zs_compact(struct zs_pool *pool, bool sync)\n",
                ),
            ],
        ),
        WrittenPatch(
            "mm: rename migrate_reason_names",
            [
                replace_in(
                    MIG_H,
                    "extern const char *migrate_reason_names[MR_TYPES];",
                    "extern const char *migrate_reason_strs[MR_TYPES];",
                ),
                replace_in(
                    "mm/debug.c",
                    "const char *migrate_reason_names[MR_TYPES] = {",
                    "const char *migrate_reason_strs[MR_TYPES] = {",
                ),
            ],
        ),
        WrittenPatch(
            "zsmalloc: rename ZS_MM_RO",
            [replace_in(ZS_H, "\tZS_MM_RO, /*", "\tZS_MM_READONLY, /*")],
        ),
        WrittenPatch(
            "mm: comment in mm.h",
            [
                replace_in(
                    "include/linux/mm.h",
                    "#define _LINUX_MM_H\n",
                    "#define _LINUX_MM_H\n/* memory management */\n",
                )
            ],
        ),
        WrittenPatch(
            "zsmalloc: rename zs_get_total_pages with its callers",
            [
                replace_in(ZS_H, "zs_get_total_pages(", "zs_total_pages("),
                replace_in(ZS, "zs_get_total_pages(", "zs_total_pages(", count=3),
                replace_in(
                    ZS,
                    "EXPORT_SYMBOL_GPL(zs_get_total_pages);",
                    "EXPORT_SYMBOL_GPL(zs_total_pages);",
                ),
                replace_in(ZRAM, "zs_get_total_pages(", "zs_total_pages(", count=3),
            ],
        ),
        WrittenPatch(
            "zsmalloc: add a helper",
            [
                replace_in(
                    ZS,
                    "unsigned long zs_compact(",
                    "static inline int zs_unused_helper(void)\n"
                    "{\n\treturn 0;\n}\n\nunsigned long zs_compact(",
                )
            ],
        ),
    ]


MORE_EXPECTED: list[tuple[str, str, str]] = [
    ("ops-initializer", "fs/btrfs/inode.c", ".launder_folio\t= btrfs_launder_folio,"),
    ("ops-initializer", "fs/fuse/file.c", ".launder_folio\t= fuse_launder_folio,"),
    ("ops-initializer", "fs/nfs/file.c", ".launder_folio = nfs_launder_folio,"),
    ("ops-initializer", "fs/orangefs/inode.c", ".launder_folio = orangefs_launder_folio,"),
    ("removed-member", "mm/truncate.c", "mapping->a_ops->launder_folio == NULL)"),
    ("removed-member", "mm/truncate.c", "return mapping->a_ops->launder_folio(folio);"),
    ("ops-initializer", "fs/nfs/file.c", ".swap_rw = nfs_swap_rw,"),
    ("ops-initializer", "fs/smb/client/file.c", ".swap_rw = cifs_swap_rw,"),
    ("removed-member", "fs/smb/client/file.c", "if (!swap_file->f_mapping->a_ops->swap_rw)"),
    ("removed-member", "mm/page_io.c", "ret = mapping->a_ops->swap_rw(&sio->iocb, &from);"),
    ("removed-member", "mm/page_io.c", "ret = mapping->a_ops->swap_rw(&sio->iocb, &from);"),
    ("removed-member", ZS, '"zs_handle-%s", pool->name);'),
    ("removed-member", ZS, '"zspage-%s", pool->name);'),
    ("removed-member", ZS, '"mm-zspool:%s", pool->name);'),
    ("removed-member", ZS, "pool->name = kstrdup(name, GFP_KERNEL);"),
    ("removed-member", ZS, "if (!pool->name)"),
    ("removed-member", ZS, "kfree(pool->name);"),
    ("stub-mismatch", MIG_H, "static inline bool isolate_folio_to_list("),
    ("removed-symbol", ZRAM, "class_index_old = zs_lookup_class_index("),
    ("removed-symbol", ZRAM, "class_index_new = zs_lookup_class_index("),
    ("prototype-change", ZRAM, "zs_compact(zram->mem_pool);"),
    ("prototype-change", ZS, "pages_freed = zs_compact(pool);"),
    ("removed-symbol", "mm/page_owner.c", "migrate_reason_names[page_owner->last_migrate_reason]"),
    ("removed-symbol", "mm/page_owner.c", "migrate_reason_names[page_owner->last_migrate_reason]"),
    ("removed-symbol", ZRAM, "src = zs_map_object(zram->mem_pool, handle, ZS_MM_RO);"),
    ("removed-symbol", ZS, "zs_mm = ZS_MM_RO;"),
    ("removed-symbol", ZS, "if (area->vm_mm == ZS_MM_RO)"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="time the pass N times")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-semantic-"))
    settings = load_settings(
        None, paths={"state": str(tmp / "state"), "cache": str(tmp / "cache")}, lists=[], trees=[]
    )
    t0 = time.monotonic()
    wt = kernel.kernel_slot("semantic-bench")
    ctx = kernel.series_context(wt, s.patches() + more_patches(), settings, tmp)
    setup = time.monotonic() - t0
    times = []
    findings: list[Finding] = []
    for _ in range(args.repeat):
        start = time.monotonic()
        findings = list(SemanticCheck().run(ctx).findings)
        times.append(time.monotonic() - start)
    kernel.git(wt, "reset", "-q", "--hard", kernel.REF)
    expected = s.EXPECTED + MORE_EXPECTED
    missed, extra = match(findings, expected)
    print(
        f"series: {len(ctx.commits)} patches, slot+commit setup {setup:.1f} s, "
        f"git commands logged in {tmp / 'logs'}"
    )
    print(
        f"semantic pass: {min(times):.2f} s (best of {len(times)}; all: "
        + ", ".join(f"{t:.2f}" for t in times)
        + ")"
    )
    print()
    print(
        f"{'rule':<18} {'expected':>8} {'reported':>8} {'true':>5} {'precision':>9} {'recall':>7}"
    )
    kinds = sorted({k for k, _, _ in expected} | {f.kind for f in findings})
    for kind in [*kinds, "all"]:
        exp = [e for e in expected if kind in ("all", e[0])]
        rep = [f for f in findings if kind in ("all", f.kind)]
        miss = [m for m in missed if kind in ("all", m[0])]
        true = len(exp) - len(miss)
        prec = true / len(rep) if rep else 1.0
        rec = true / len(exp) if exp else 1.0
        print(f"{kind:<18} {len(exp):>8} {len(rep):>8} {true:>5} {prec:>9.2f} {rec:>7.2f}")
    for m in missed:
        print("missed:", m)
    for f in extra:
        print("false positive:", f.kind, f"{f.file}:{f.line}", f.message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
