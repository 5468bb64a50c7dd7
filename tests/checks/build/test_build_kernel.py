"""The build check on the real kernel tree with real compilers (slow; builds stay warm).

Every test writes its own series on top of linux-source-6.12 and runs
`BuildCheck` the way the pipeline does. O= dirs and ccache live under the
test cache, so a second run is mostly cache hits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.core.results import CheckResult, Finding
from checks.build import BuildCheck
from config.settings import BuildSettings, Settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

pytestmark = pytest.mark.kernel


def _settings(settings: Settings, **build: object) -> Settings:
    return settings.model_copy(update={"build": BuildSettings(**build)})


def _check(
    slot: str, patches: list[WrittenPatch], settings: Settings, tmp_path: Path
) -> CheckResult:
    wt = kernel.kernel_slot(slot)
    ctx = kernel.series_context(wt, patches, settings, tmp_path, cache_dir=kernel.test_cache())
    head = kernel.git(wt, "rev-parse", "HEAD").strip()
    result = BuildCheck().run(ctx)
    assert kernel.git(wt, "rev-parse", "HEAD").strip() == head  # HEAD restored
    return result


def _run(
    slot: str, patches: list[WrittenPatch], settings: Settings, tmp_path: Path
) -> list[Finding]:
    return list(_check(slot, patches, settings, tmp_path).findings)


def _problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind in ("error", "warning")]


def test_call_to_function_declared_only_with_migration(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """folio_migrate_flags() has no !CONFIG_MIGRATION stub: lorebot builds MIGRATION=n."""
    patch = WrittenPatch(
        "mm/filemap: copy flags on removal",
        [
            replace_in(
                "mm/filemap.c",
                "\tBUG_ON(!folio_test_locked(folio));\n\tspin_lock(&mapping->host->i_lock);",
                "\tBUG_ON(!folio_test_locked(folio));\n\tfolio_migrate_flags(folio, folio);\n"
                "\tspin_lock(&mapping->host->i_lock);",
            )
        ],
    )
    found = _problems(_run("build-x86", [patch], _settings(settings, arches=["x86_64"]), tmp_path))
    assert found, "the MIGRATION=n build error was not found"
    assert {f.arch for f in found} == {"x86_64"}
    f = next(f for f in found if f.severity == "error")
    assert f.file == "mm/filemap.c" and f.patch == 1
    assert "folio_migrate_flags" in f.message
    assert f.symbols.get("MIGRATION") == "n"
    assert "MIGRATION=n" in f.config
    assert "# CONFIG_MIGRATION is not set" in f.config_fragment
    assert any("--disable MIGRATION" in c for c in f.reproduce)
    assert any(c.endswith("mm/filemap.o") for c in f.reproduce)
    # the commands are for the reader's tree: no path of ours, no commit only we have
    assert all(" O=build " in f" {c} " or "--file build/.config" in c for c in f.reproduce)
    assert not any("git checkout" in c for c in f.reproduce)
    assert ">" in f.excerpt and "folio_migrate_flags" in f.source_line
    assert f.compiler.startswith("gcc")


def test_powerpc_only_file_is_built_on_powerpc(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """cmm.c is built only on powerpc (pseries): the series selects that arch by itself."""
    patch = WrittenPatch(
        "powerpc/pseries/cmm: log the request",
        [
            replace_in(
                "arch/powerpc/platforms/pseries/cmm.c",
                '\tcmm_dbg("Begin request for %ld pages\\n", nr);',
                '\tcmm_dbg("Begin request for %ld pages\\n", nr_pages);',
            )
        ],
    )
    found = _run("build-ppc", [patch], settings, tmp_path)
    errors = [f for f in _problems(found) if f.severity == "error"]
    assert errors, [f.message for f in found]
    assert {f.arch for f in errors} == {"powerpc"}
    f = errors[0]
    assert f.file == "arch/powerpc/platforms/pseries/cmm.c" and f.patch == 1
    assert "nr_pages" in f.message
    assert f.compiler.startswith("powerpc64le-linux-gnu-gcc")
    assert any("CROSS_COMPILE=powerpc64le-linux-gnu-" in c for c in f.reproduce)


def test_unused_variable_attributed_to_second_patch(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """Three patches; only the second adds a set-but-unused variable (a W=1 warning)."""
    patches = [
        WrittenPatch(
            "mm/readahead: reword a comment",
            [
                replace_in(
                    "mm/readahead.c",
                    " * Initialise a struct file's readahead state.",
                    " * Initialise the readahead state of a struct file.",
                )
            ],
        ),
        WrittenPatch(
            "mm/filemap: count removals",
            [
                replace_in(
                    "mm/filemap.c",
                    "\tstruct address_space *mapping = folio->mapping;\n\n"
                    "\tBUG_ON(!folio_test_locked(folio));\n",
                    "\tstruct address_space *mapping = folio->mapping;\n\tint removed;\n\n"
                    "\tBUG_ON(!folio_test_locked(folio));\n\tremoved = 1;\n",
                )
            ],
        ),
        WrittenPatch(
            "mm/swap: reword a comment",
            [
                replace_in(
                    "mm/swap.c",
                    "This file contains the default values",
                    "This file holds the default values",
                )
            ],
        ),
    ]
    found = _problems(_run("build-x86", patches, _settings(settings, arches=["x86_64"]), tmp_path))
    assert len(found) == 1, [(f.patch, f.file, f.message) for f in found]
    f = found[0]
    assert (f.patch, f.kind, f.file) == (2, "warning", "mm/filemap.c")
    assert f.option == "-Wunused-but-set-variable"
    assert "removed" in f.message
    assert any("W=1" in c and c.endswith("mm/filemap.o") for c in f.reproduce)


def test_warning_at_base_is_not_reported_when_it_moves(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """A W=1 warning already at the base stays quiet after a patch moves its line."""
    wt = kernel.kernel_slot("build-x86")
    kernel.commit_series(
        wt,
        [
            WrittenPatch(
                "base: an unused variable",
                [
                    replace_in(
                        "mm/filemap.c",
                        "\tstruct address_space *mapping = folio->mapping;\n\n"
                        "\tBUG_ON(!folio_test_locked(folio));\n",
                        "\tstruct address_space *mapping = folio->mapping;\n\tint removed;\n\n"
                        "\tBUG_ON(!folio_test_locked(folio));\n\tremoved = 1;\n",
                    )
                ],
            )
        ],
    )
    patch = WrittenPatch(
        "mm/filemap: explain removal",
        [
            replace_in(
                "mm/filemap.c",
                "void filemap_remove_folio(struct folio *folio)\n{",
                "/*\n * Remove a locked folio from the page cache.\n"
                " * The caller holds a reference.\n"
                " */\nvoid filemap_remove_folio(struct folio *folio)\n{",
            )
        ],
    )
    ctx = kernel.series_context(
        wt, [patch], _settings(settings, arches=["x86_64"]), tmp_path, cache_dir=kernel.test_cache()
    )
    assert _problems(list(BuildCheck().run(ctx).findings)) == []
    # the warning was there, at the base and after the patch, and was left out
    logs = (tmp_path / "logs").iterdir()  # make (the baseline) and replayed steps
    seen = [log.read_text() for log in logs if log.name.endswith(("-build.log", "-replay.log"))]
    assert sum("removed" in t and "set but not used" in t for t in seen) >= 2


def test_clean_series_has_no_findings(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """A harmless two-patch series (code and a header) on two arches: nothing reported."""
    patches = [
        WrittenPatch(
            "mm/filemap: use a local for the host",
            [
                replace_in(
                    "mm/filemap.c",
                    "\tBUG_ON(!folio_test_locked(folio));\n\tspin_lock(&mapping->host->i_lock);",
                    "\tBUG_ON(!folio_test_locked(folio));\n\tspin_lock(&(mapping->host)->i_lock);",
                )
            ],
        ),
        WrittenPatch(
            "mm: balloon: document the lock",
            [
                replace_in(
                    "include/linux/balloon_compaction.h",
                    "spinlock_t pages_lock;\t\t/* Protection to pages list */",
                    "spinlock_t pages_lock;\t\t/* Protects the pages list */",
                )
            ],
        ),
    ]
    result = _check("build-x86", patches, _settings(settings, arches=["x86_64", "i386"]), tmp_path)
    assert _problems(list(result.findings)) == []
    builds = [log.read_text().splitlines()[0] for log in (tmp_path / "logs").glob("*-build.log")]
    for arch in ("x86_64", "i386"):
        assert any(f"ARCH={arch} " in b and "mm/filemap.o" in b for b in builds), builds
    assert not [n for n in result.notes if n.kind == "toolchain-missing"]


def test_removed_member_still_used_under_ifdef(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """balloon_dev_info.migratepage is used only under CONFIG_BALLOON_COMPACTION."""
    patch = WrittenPatch(
        "mm: balloon: drop the migratepage callback",
        [
            replace_in(
                "include/linux/balloon_compaction.h",
                "\tint (*migratepage)(struct balloon_dev_info *, struct page *newpage,\n"
                "\t\t\tstruct page *page, enum migrate_mode mode);\n",
                "",
            )
        ],
    )
    found = _problems(_run("build-x86", [patch], _settings(settings, arches=["x86_64"]), tmp_path))
    hits = [f for f in found if f.file == "mm/balloon_compaction.c" and f.severity == "error"]
    assert hits, [(f.file, f.message, f.config) for f in found]
    f = hits[0]
    assert "migratepage" in f.message
    assert f.symbols.get("BALLOON_COMPACTION") == "y"
    assert f.patch == 1 and f.arch == "x86_64"


def test_missing_toolchain_is_reported_once(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An arch without its compiler gives one note (never a finding); the others build."""
    real_which = shutil.which
    monkeypatch.setattr(
        shutil,
        "which",
        lambda name, *a, **k: None if name.startswith("aarch64-") else real_which(name, *a, **k),
    )
    patch = WrittenPatch(
        "mm/filemap: copy flags on removal",
        [
            replace_in(
                "mm/filemap.c",
                "\tBUG_ON(!folio_test_locked(folio));\n\tspin_lock(&mapping->host->i_lock);",
                "\tBUG_ON(!folio_test_locked(folio));\n\tfolio_migrate_flags(folio, folio);\n"
                "\tspin_lock(&mapping->host->i_lock);",
            )
        ],
    )
    result = _check("build-x86", [patch], _settings(settings, arches=["x86_64", "arm64"]), tmp_path)
    missing = [n for n in result.notes if n.kind == "toolchain-missing"]
    assert len(missing) == 1 and missing[0].arch == "arm64"
    assert not [f for f in result.findings if f.severity not in ("error", "warning")]
    assert any(f.arch == "x86_64" and f.severity == "error" for f in result.findings)
