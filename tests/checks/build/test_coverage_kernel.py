"""Patch coverage and solved variants on linux-source-6.12 (slow; builds stay warm).

Each test writes a series on the real tree and runs `BuildCheck` as the
pipeline does, then checks what a user reads in `coverage`: every changed line
compiled, or why not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.core.results import CheckResult
from checks.build import BuildCheck
from config.settings import BuildSettings, Settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

pytestmark = pytest.mark.kernel


def _check(
    slot: str, patches: list[WrittenPatch], settings: Settings, tmp_path: Path
) -> CheckResult:
    wt = kernel.kernel_slot(slot)
    settings = settings.model_copy(update={"build": BuildSettings(arches=["x86_64"])})
    ctx = kernel.series_context(wt, patches, settings, tmp_path, cache_dir=kernel.test_cache())
    return BuildCheck().run(ctx)


def _edit(subject: str, path: str, old: str, new: str) -> WrittenPatch:
    """A patch of one replacement in one file."""
    return WrittenPatch(subject, [replace_in(path, old, new)])


def _said(result: CheckResult) -> list[str]:
    return [f"{n.kind}: {n.message}" for n in result.notes] + [
        f"variant {v.arch} {v.config}: {' '.join(v.objects)}" for v in result.variants
    ]


def test_device_migration_object_gets_a_solved_variant(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """DEVICE_MIGRATION has no prompt and needs ZONE_DEVICE, which needs MEMORY_HOTPLUG and
    MEMORY_HOTREMOVE: none in x86_64 defconfig. The solver finds them; the object compiles."""
    patch = _edit(
        "mm/migrate_device: name the skipped entries",
        "mm/migrate_device.c",
        "\t\tmigrate->dst[migrate->npages] = 0;\n",
        "\t\tmigrate->dst[migrate->npages] = 0UL;\n",
    )
    result = _check("cov-migrate", [patch], settings, tmp_path)
    built = {o for v in result.variants for o in v.objects}
    assert "mm/migrate_device.o" in built, _said(result)
    assert not result.uncompiled, _said(result)
    cov = result.coverage
    assert cov is not None and cov.lines == cov.covered == 1, (cov, _said(result))


def test_powerpc_only_file_gets_a_ppc64le_variant_unconfigured(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """build.arches is x86_64 only; a change to arch/powerpc/ still gets a powerpc build."""
    patch = _edit(
        "powerpc/pseries/cmm: count in longs",
        "arch/powerpc/platforms/pseries/cmm.c",
        "\tlong nr = KB2PAGES(oom_kb);\n",
        "\tlong nr = (long)KB2PAGES(oom_kb);\n",
    )
    result = _check("cov-ppc", [patch], settings, tmp_path)
    ppc = [v for v in result.variants if v.arch == "powerpc"]
    assert ppc and any("arch/powerpc/platforms/pseries/cmm.o" in v.objects for v in ppc), _said(
        result
    )
    cov = result.coverage
    assert cov is not None and cov.lines == cov.covered == 1, (cov, _said(result))


def _lines_with_code(i_text: str, path: str) -> set[int]:
    """Lines of `path` that left code in a plain `make x.i` (the check's ground truth)."""
    out: set[int] = set()
    current = False
    line = 0
    for text in i_text.splitlines():
        if m := re.match(r'^# (\d+) "([^"]*)"', text):
            current = m[2].endswith(path)
            line = int(m[1])
            continue
        if current and text.strip():
            out.add(line)
        line += 1
    return out


def test_both_sides_of_an_ifdef_are_compiled_and_match_the_preprocessor(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """mempool.c: one line under CONFIG_SLUB_DEBUG_ON (off in defconfig), one in its #else."""
    patch = WrittenPatch(
        "mm/mempool: touch both debug sides",
        [
            replace_in(
                "mm/mempool.c",
                "\tconst int nr = pool->curr_nr;\n",
                "\tconst int nr = (int)pool->curr_nr;\n",
            ),
            replace_in(
                "mm/mempool.c",
                "static inline void check_element(mempool_t *pool, void *element)\n{\n}",
                "static inline void check_element(mempool_t *pool, void *element)\n{\n"
                "\t(void)pool;\n}",
            ),
        ],
    )
    result = _check("cov-ifdef", [patch], settings, tmp_path)
    assert {v.flip for v in result.variants} >= {None, "SLUB_DEBUG_ON=y"}, _said(result)
    cov = result.coverage
    assert cov is not None and (cov.lines, cov.covered) == (2, 2), (cov, _said(result))
    # the same answer, line for line, from `make mm/mempool.i` in each variant's O= dir
    slot = kernel.test_cache() / "slots" / "cov-ifdef"
    changed = {
        n
        for n, text in enumerate((slot / "mm/mempool.c").read_text().splitlines(), 1)
        if text in ("\tconst int nr = (int)pool->curr_nr;", "\t(void)pool;")
    }
    assert len(changed) == 2
    truth: set[int] = set()
    for cfg in (kernel.test_cache() / "build").glob("*cov-ifdef/x86_64/defconfig-*/.config"):
        # a copy: make as root in the check's own O= dir would leave files its sandbox
        # (another uid) cannot replace
        odir = tmp_path / cfg.parent.name
        shutil.copytree(cfg.parent, odir, symlinks=True)
        subprocess.run(
            [
                *("make", "-s", "-C", str(slot), f"O={odir}", "ARCH=x86_64"),
                *("CC=ccache gcc", "HOSTCC=ccache gcc", "mm/mempool.i"),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "CCACHE_DISABLE": "1"},
        )
        truth |= _lines_with_code((odir / "mm/mempool.i").read_text(), "mm/mempool.c")
    assert changed <= truth


def test_header_whose_users_are_all_behind_off_symbols_gets_a_user_compiled(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """platform_data/ina2xx.h is included only by drivers off in x86_64 defconfig, and the
    change is a comment: a user is still compiled and the line counts as covered."""
    patch = _edit(
        "ina2xx: document the unit",
        "include/linux/platform_data/ina2xx.h",
        "\tlong shunt_uohms;\n",
        "\tlong shunt_uohms;\t/* micro-ohms */\n",
    )
    result = _check("cov-header", [patch], settings, tmp_path)
    users = {"drivers/hwmon/ina209.o", "drivers/hwmon/ina238.o", "drivers/iio/adc/ina2xx-adc.o"}
    built = {o for v in result.variants for o in v.objects}
    assert built & users, _said(result)
    cov = result.coverage
    assert cov is not None and cov.lines == cov.covered == 1, (cov, _said(result))


PICK = """
int lorebot_pick(int a);
int lorebot_pick(int a)
{
	int x;

	if (a > 1)
		x = a;
	return x;
}
"""


def _append(path: str, text: str) -> kernel.Edit:
    def edit(wt: Path) -> None:
        with (wt / path).open("a") as f:
            f.write(text)

    return edit


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang (apt-get install clang)")
def test_llvm_build_finds_what_only_clang_says(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    """A variable used uninitialized on one path: gcc says nothing in a kernel build
    (-Wmaybe-uninitialized is off), clang's -Wsometimes-uninitialized does. With LLVM=1 as
    the second toolchain, that is a finding of the clang build, reproducible with LLVM=1."""
    patch = WrittenPatch("mm/filemap: pick a value", [_append("mm/filemap.c", PICK)])
    wt = kernel.kernel_slot("build-x86")
    llvm = settings.model_copy(update={"build": BuildSettings(arches=["x86_64"], llvm_second=True)})
    ctx = kernel.series_context(wt, [patch], llvm, tmp_path, cache_dir=kernel.test_cache())
    result = BuildCheck().run(ctx)
    clang = [v for v in result.variants if v.config.endswith("LLVM=1")]
    assert clang and "mm/filemap.o" in clang[0].objects, _said(result)
    found = [f for f in result.findings if f.kind in ("error", "warning")]
    assert [(f.config, f.option) for f in found] == [
        ("defconfig LLVM=1", "-Wsometimes-uninitialized")
    ], [(f.config, f.message) for f in found]
    f = found[0]
    assert f.file == "mm/filemap.c" and f.patch == 1 and "'x'" in f.message
    assert f.compiler.startswith(("clang", "Debian clang"))
    assert any(" LLVM=1 " in f" {c} " and c.endswith("mm/filemap.o") for c in f.reproduce)
    cov = result.coverage
    assert cov is not None and cov.lines == cov.covered, (cov, _said(result))
