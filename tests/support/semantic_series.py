"""The series the semantic tests and bench/semantic.py write (data only, no tests here).

Each rule has a case that must be reported and a near miss that must not.
`EXPECTED` lists (kind, file, source line fragment) of every true finding.
"""

from __future__ import annotations

from bot.core.results import Finding
from tests.support.kernel import WrittenPatch, replace_in

H = "include/linux/balloon_compaction.h"
C = "mm/balloon_compaction.c"
MIGRATE_H = "include/linux/migrate.h"
VIRTIO = "drivers/virtio/virtio_balloon.c"
VMW = "drivers/misc/vmw_balloon.c"
CMM = "arch/powerpc/platforms/pseries/cmm.c"


def patches() -> list[WrittenPatch]:
    """Six patches: one rule (and its near miss) each."""
    return [
        WrittenPatch(
            "balloon: drop isolated_pages and the pages list",
            [
                replace_in(
                    H,
                    "\tunsigned long isolated_pages;\t"
                    "/* # of isolated pages for migration */\n"
                    "\tspinlock_t pages_lock;\t\t/* Protection to pages list */\n"
                    "\tstruct list_head pages;\t\t/* Pages enqueued & handled to Host */\n",
                    "\tspinlock_t pages_lock;\t\t/* Protection to pages list */\n",
                ),
            ],
        ),
        WrittenPatch(
            "balloon: add balloon_ops",
            [
                replace_in(
                    H,
                    "struct balloon_dev_info {",
                    "struct balloon_ops {\n\tvoid (*putback_page)(struct page *);\n};\n\n"
                    "struct balloon_dev_info {",
                ),
                replace_in(
                    C,
                    "const struct movable_operations balloon_mops = {",
                    "const struct balloon_ops balloon_ops = {\n"
                    "\t.putback_page = balloon_page_putback,\n};\n\n"
                    "const struct movable_operations balloon_mops = {",
                ),
            ],
        ),
        WrittenPatch(
            "mm/migrate: drop movable_operations.putback_page",
            [
                replace_in(MIGRATE_H, "\tvoid (*putback_page)(struct page *);\n", ""),
            ],
        ),
        WrittenPatch(
            "balloon: pass gfp to the enqueue functions",
            [
                replace_in(
                    H,
                    "extern void balloon_page_enqueue(struct balloon_dev_info *b_dev_info,\n"
                    "\t\t\t\t struct page *page);",
                    "extern void balloon_page_enqueue(struct balloon_dev_info *b_dev_info,\n"
                    "\t\t\t\t struct page *page, gfp_t gfp);",
                ),
                replace_in(
                    C,
                    "void balloon_page_enqueue(struct balloon_dev_info *b_dev_info,\n"
                    "\t\t\t  struct page *page)",
                    "void balloon_page_enqueue(struct balloon_dev_info *b_dev_info,\n"
                    "\t\t\t  struct page *page, gfp_t gfp)",
                ),
                # near miss: changed together with its only caller
                replace_in(
                    H,
                    "extern size_t balloon_page_list_enqueue(struct balloon_dev_info "
                    "*b_dev_info,\n\t\t\t\t      struct list_head *pages);",
                    "extern size_t balloon_page_list_enqueue(struct balloon_dev_info "
                    "*b_dev_info,\n\t\t\t\t      struct list_head *pages, gfp_t gfp);",
                ),
                replace_in(
                    C,
                    "size_t balloon_page_list_enqueue(struct balloon_dev_info *b_dev_info,\n"
                    "\t\t\t\t struct list_head *pages)",
                    "size_t balloon_page_list_enqueue(struct balloon_dev_info *b_dev_info,\n"
                    "\t\t\t\t struct list_head *pages, gfp_t gfp)",
                ),
                replace_in(
                    VMW,
                    "balloon_page_list_enqueue(&b->b_dev_info, pages);",
                    "balloon_page_list_enqueue(&b->b_dev_info, pages, GFP_KERNEL);",
                ),
            ],
        ),
        WrittenPatch(
            "balloon: insert with flags",
            [
                replace_in(
                    H,
                    "static inline void balloon_page_insert("
                    "struct balloon_dev_info *balloon,\n"
                    "\t\t\t\t       struct page *page)\n{\n\t__SetPageOffline(page);\n"
                    "\t__SetPageMovable",
                    "static inline void balloon_page_insert(struct balloon_dev_info *balloon,\n"
                    "\t\t\t\t       struct page *page, int flags)\n{\n"
                    "\t__SetPageOffline(page);\n\t__SetPageMovable",
                ),
                # near miss: both sides of the #ifdef change together
                replace_in(
                    H,
                    "static inline gfp_t balloon_mapping_gfp_mask(void)",
                    "static inline unsigned int balloon_mapping_gfp_mask(void)",
                    count=2,
                ),
            ],
        ),
        WrittenPatch(
            "balloon: remove balloon_page_alloc and balloon_page_push",
            [
                replace_in(H, "extern struct page *balloon_page_alloc(void);\n", ""),
                replace_in(
                    C,
                    "struct page *balloon_page_alloc(void)\n{\n"
                    "\tstruct page *page = alloc_page(balloon_mapping_gfp_mask() |\n"
                    "\t\t\t\t       __GFP_NOMEMALLOC | __GFP_NORETRY |\n"
                    "\t\t\t\t       __GFP_NOWARN);\n\treturn page;\n}\n"
                    "EXPORT_SYMBOL_GPL(balloon_page_alloc);\n",
                    "",
                ),
                # near miss: removed with its callers; only a comment still names it
                replace_in(
                    H,
                    "static inline void balloon_page_push(struct list_head *pages, "
                    "struct page *page)\n{\n\tlist_add(&page->lru, pages);\n}\n",
                    "",
                ),
                replace_in(
                    VIRTIO, "balloon_page_push(&pages, page);", "list_add(&page->lru, &pages);"
                ),
                replace_in(
                    VIRTIO,
                    "balloon_page_push(&vb->free_page_list, page);",
                    "list_add(&page->lru, &vb->free_page_list);",
                ),
            ],
        ),
    ]


# (kind, file, fragment of the offending source line) of every finding that must be reported
EXPECTED: list[tuple[str, str, str]] = [
    ("removed-member", CMM, "b_dev_info->isolated_pages--;"),
    ("removed-member", VMW, "b->b_dev_info.isolated_pages--;"),
    ("removed-member", VIRTIO, "vb_dev_info->isolated_pages--;"),
    ("removed-member", H, "balloon->isolated_pages = 0;"),
    ("removed-member", H, "INIT_LIST_HEAD(&balloon->pages);"),
    ("removed-member", H, "list_add(&page->lru, &balloon->pages);"),
    ("removed-member", H, "list_add(&page->lru, &balloon->pages);"),
    ("removed-member", C, "!b_dev_info->isolated_pages))"),
    ("removed-member", C, "b_dev_info->isolated_pages++;"),
    ("removed-member", C, "b_dev_info->isolated_pages--;"),
    ("removed-member", C, "list_for_each_entry_safe(page, tmp, &b_dev_info->pages, lru) {"),
    ("removed-member", C, "if (unlikely(list_empty(&b_dev_info->pages) &&"),
    ("removed-member", C, "list_add(&page->lru, &b_dev_info->pages);"),
    ("removed-member", "mm/migrate.c", "mops->putback_page(&folio->page);"),
    ("ops-initializer", C, ".putback_page = balloon_page_putback,"),
    ("ops-initializer", "mm/z3fold.c", ".putback_page = z3fold_page_putback,"),
    ("ops-initializer", "mm/zsmalloc.c", ".putback_page = zs_page_putback,"),
    ("prototype-change", CMM, "balloon_page_enqueue(&b_dev_info, page);"),
    ("prototype-change", VIRTIO, "balloon_page_enqueue(&vb->vb_dev_info, page);"),
    ("stub-mismatch", H, "static inline void balloon_page_insert("),
    ("removed-symbol", CMM, "page = balloon_page_alloc();"),
    ("removed-symbol", VMW, "page = balloon_page_alloc();"),
    ("removed-symbol", VIRTIO, "struct page *page = balloon_page_alloc();"),
]


def match(
    findings: list[Finding], expected: list[tuple[str, str, str]]
) -> tuple[list[tuple[str, str, str]], list[Finding]]:
    """(expected cases not found, findings not expected), matching each at most once."""
    left = list(findings)
    missed = []
    for kind, file, fragment in expected:
        hit = next(
            (f for f in left if f.kind == kind and f.file == file and fragment in f.source_line),
            None,
        )
        if hit is None:
            missed.append((kind, file, fragment))
        else:
            left.remove(hit)
    return missed, left
