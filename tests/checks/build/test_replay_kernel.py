"""Steps built by replaying Kbuild's saved commands find what make finds (real kernel).

After the baseline, a patch that changes only C sources and headers is built by
running the saved compile commands of the objects it reaches; a header that a
generated file reads (include/linux/mm.h feeds asm-offsets) goes through make.
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

PATCHES = [
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
        "mm/internal: count mapped pages",
        [
            replace_in(
                "mm/internal.h",
                "static inline int folio_nr_pages_mapped(const struct folio *folio)\n{\n",
                "static inline int folio_nr_pages_mapped(const struct folio *folio)\n{\n"
                "\tint seen;\n\n\tseen = 1;\n",
            )
        ],
    ),
    WrittenPatch(
        "mm: reword a comment",
        [replace_in("include/linux/mm.h", "Linux kernel virtual memory manager", "Linux VM")],
    ),
]


def _check(settings: Settings, tmp_path: Path, replay: bool) -> tuple[CheckResult, list[str]]:
    wt = kernel.kernel_slot("build-x86")
    settings = settings.model_copy(
        update={"build": BuildSettings(arches=["x86_64"], replay=replay, reuse=False)}
    )
    ctx = kernel.series_context(wt, PATCHES, settings, tmp_path, cache_dir=kernel.test_cache())
    result = BuildCheck().run(ctx)
    return result, sorted(p.name.split("-", 1)[1] for p in (tmp_path / "logs").iterdir())


def _found(result: CheckResult) -> set[tuple[int | None, str, int | None, str, str]]:
    return {
        (f.patch, f.file, f.line, f.message, f.config)
        for f in result.findings
        if f.kind in ("error", "warning")
    }


def test_replayed_steps_find_what_make_finds(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    replayed, logs = _check(settings, tmp_path / "replay", replay=True)
    made, made_logs = _check(settings, tmp_path / "make", replay=False)
    found = _found(replayed)
    assert found == _found(made)
    assert {(p, file) for p, file, *_ in found} == {(2, "mm/internal.h")}, found
    assert any("seen" in m for _, _, _, m, _ in found)
    # patches 1 and 2 replayed; the baseline and patch 3 (mm.h feeds asm-offsets) by make,
    # in each variant built
    lanes = len(replayed.variants)
    assert 1 <= logs.count("x86_64-replay.log") <= 2 * lanes, logs
    assert logs.count("x86_64-build.log") == 2 * lanes, logs
    assert made_logs.count("x86_64-build.log") == 4 * lanes, made_logs
    assert "x86_64-replay.log" not in made_logs
