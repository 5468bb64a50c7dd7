"""Derived variants before breadth, on the real kernel tree with the default settings.

Adding arches must never make lorebot find less: the flip that a diff points
to is built before any arch gets breadth, and whatever the budget leaves out
is a Note and a dropped entry of the plan, never silence.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.results import CheckResult
from checks.build import BuildCheck
from config.settings import BuildSettings, Settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

pytestmark = pytest.mark.kernel

CALL = WrittenPatch(
    "mm/filemap: put back movable pages on removal",
    [
        replace_in(
            "mm/filemap.c",
            "\tBUG_ON(!folio_test_locked(folio));\n\tspin_lock(&mapping->host->i_lock);",
            "\tBUG_ON(!folio_test_locked(folio));\n\tputback_movable_pages(&folio->lru);\n"
            "\tspin_lock(&mapping->host->i_lock);",
        )
    ],
)
DROP_STUB = WrittenPatch(
    "mm/migrate: drop the !MIGRATION stub of putback_movable_pages",
    [
        replace_in(
            "include/linux/migrate.h",
            "static inline void putback_movable_pages(struct list_head *l) {}\n",
            "",
        )
    ],
)


def _check(
    patches: list[WrittenPatch], settings: Settings, tmp_path: Path, **build: object
) -> CheckResult:
    settings = settings.model_copy(update={"build": BuildSettings(**build)})
    wt = kernel.kernel_slot("build-x86")
    ctx = kernel.series_context(wt, patches, settings, tmp_path, cache_dir=kernel.test_cache())
    return BuildCheck().run(ctx)


def _the_break(result: CheckResult) -> None:
    errors = [f for f in result.findings if f.severity == "error"]
    hit = [f for f in errors if f.file == "mm/filemap.c" and "putback_movable_pages" in f.message]
    assert hit, [(f.patch, f.file, f.message, f.config) for f in result.findings]
    f = hit[0]
    assert (f.patch, f.arch) == (2, "x86_64")
    assert "MIGRATION=n" in f.config and f.symbols.get("MIGRATION") == "n"
    built = {(v.arch, v.flip) for v in result.variants}
    assert ("x86_64", "MIGRATION=n") in built
    assert all("mm/filemap.o" in v.objects for v in result.variants)


def test_removed_stub_found_with_default_arches(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """The default four arches and default max_variants: the MIGRATION=n break is found
    on patch 2, and every arch still gets its base."""
    defaults = BuildSettings()
    assert len(defaults.arches) == 4
    result = _check([CALL, DROP_STUB], settings, tmp_path)
    _the_break(result)
    assert {v.arch for v in result.variants if v.flip is None} == set(defaults.arches)


def test_removed_stub_found_with_one_arch(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    result = _check([CALL, DROP_STUB], settings, tmp_path, arches=["x86_64"])
    _the_break(result)
    assert {v.arch for v in result.variants} == {"x86_64"}


def test_budget_keeps_the_flips_guarding_the_series(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """One object, two flips from what the patch adds (a call declared only with
    MIGRATION, a line under TRANSPARENT_HUGEPAGE), four arches, and a budget of about
    three variants: both flips are built on x86_64; breadth is dropped, each drop a Note
    with its reason."""
    patch = WrittenPatch(
        "mm/filemap: copy flags on removal; smaller THP readahead",
        [
            replace_in(
                "mm/filemap.c",
                "\tBUG_ON(!folio_test_locked(folio));\n\tspin_lock(&mapping->host->i_lock);",
                "\tBUG_ON(!folio_test_locked(folio));\n\tfolio_migrate_flags(folio, folio);\n"
                "\tspin_lock(&mapping->host->i_lock);",
            ),
            replace_in(
                "mm/filemap.c",
                "\t\tra->async_size = HPAGE_PMD_NR;\n\t\tpage_cache_ra_order",
                "\t\tra->async_size = HPAGE_PMD_NR / 2;\n\t\tpage_cache_ra_order",
            ),
        ],
    )
    # one object, baseline + one patch: 2 compiles x 10 s / 2 jobs = 10 s per variant
    result = _check(
        [patch], settings, tmp_path, object_seconds=10.0, config_seconds=0.0, budget_seconds=35
    )
    built = [(v.arch, v.flip) for v in result.variants]
    assert built == [
        ("x86_64", None),
        ("x86_64", "MIGRATION=n"),
        ("x86_64", "TRANSPARENT_HUGEPAGE=y"),
    ]
    dropped = {(v.arch, v.flip): v.reason for v in result.dropped}
    assert {("i386", None), ("arm64", None), ("powerpc", None)} <= set(dropped)
    assert all("budget_seconds" in r for r in dropped.values()), dropped
    notes = [n for n in result.notes if n.kind == "variant-dropped"]
    assert len(notes) == len(result.dropped)
    assert any("i386" in n.message and "budget" in n.message for n in notes)
    # the flip still found its bug
    assert any(
        f.severity == "error" and "folio_migrate_flags" in f.message and "MIGRATION=n" in f.config
        for f in result.findings
    )
