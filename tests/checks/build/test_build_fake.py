"""The build check end to end on tests/fakelinux: real make, gcc and git, in seconds.

The same BuildCheck as on linux-source-6.12 (tests/checks/build/test_build_kernel.py),
on a tree of a few files: the derived config variant, attribution to the patch
that caused a diagnostic, the baseline, and a header change breaking its users.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.core.results import CheckResult, CheckStatus, Finding
from checks.build import BuildCheck
from config.settings import BuildSettings, Settings
from tests.support import kernel
from tests.support.fakelinux import REWORD, UNUSED_SEEN, fake_tree, gauge_series
from tests.support.kernel import WrittenPatch, replace_in

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("ccache") is None,
    reason="needs gcc and ccache (apt-get install gcc ccache)",
)


def check(patches: list[WrittenPatch], settings: Settings, tmp_path: Path) -> CheckResult:
    """BuildCheck on the series written on a fresh fakelinux, x86_64 only."""
    wt = fake_tree(tmp_path / "linux")
    settings = settings.model_copy(update={"build": BuildSettings(arches=["x86_64"])})
    ctx = kernel.series_context(wt, patches, settings, tmp_path, cache_dir=tmp_path / "cache")
    head = kernel.git(wt, "rev-parse", "HEAD").strip()
    result = BuildCheck().run(ctx)
    assert kernel.git(wt, "rev-parse", "HEAD").strip() == head  # HEAD restored
    return result


def problems(result: CheckResult) -> list[Finding]:
    return [f for f in result.findings if f.kind in ("error", "warning")]


def described(result: CheckResult) -> list[tuple[int | None, str, str, str]]:
    """What a failed assertion should show: findings, notes and variants."""
    return (
        [(f.patch, f.file, f.config, f.message) for f in result.findings]
        + [(None, n.kind, n.config, n.message) for n in result.notes]
        + [(None, "variant", v.config, " ".join(v.objects)) for v in result.variants]
    )


def test_call_declared_only_with_foo_fails_only_with_foo_off(
    settings: Settings, tmp_path: Path
) -> None:
    """foo_get() has no stub: the call breaks only FOO=n, a variant the defconfig lacks."""
    patches = [
        WrittenPatch(
            "mm/core: reword a comment",
            [replace_in("mm/core.c", "part of the base", "kept in the base")],
        ),
        WrittenPatch(
            "mm/core: start from the first foo",
            [
                replace_in(
                    "mm/core.c", "\treturn foo_count();\n", "\treturn foo_get(0) + foo_count();\n"
                )
            ],
        ),
    ]
    result = check(patches, settings, tmp_path)
    found = problems(result)
    assert len(found) == 1, described(result)
    f = found[0]
    assert (f.severity, f.file, f.patch) == ("error", "mm/core.c", 2)
    assert "foo_get" in f.message and f.option == "-Wimplicit-function-declaration"
    assert f.symbols.get("FOO") == "n" and "FOO=n" in f.config
    assert "# CONFIG_FOO is not set" in f.config_fragment
    assert any("--disable FOO" in c for c in f.reproduce)
    assert f.reproduce[-1].endswith("mm/core.o")
    assert "foo_get(0)" in f.source_line and f.excerpt
    # the defconfig (FOO=y) was built too, and compiled the call without complaint
    assert {v.config for v in result.variants} >= {"defconfig", f.config}, described(result)


def test_w1_warning_is_attributed_to_the_second_of_three(
    settings: Settings, tmp_path: Path
) -> None:
    patches = [
        REWORD,
        UNUSED_SEEN,
        WrittenPatch(
            "mm/foo: parenthesize the index",
            [replace_in("mm/foo.c", "foo_items[id & 3]", "foo_items[(id) & 3]")],
        ),
    ]
    result = check(patches, settings, tmp_path)
    found = problems(result)
    assert len(found) == 1, described(result)
    f = found[0]
    assert (f.severity, f.file, f.patch) == ("warning", "mm/bar.c", 2)
    assert f.option == "-Wunused-but-set-variable" and "'seen'" in f.message
    assert any(" W=1 " in f" {c} " and c.endswith("mm/bar.o") for c in f.reproduce)


def test_warning_already_in_the_base_is_not_reported(settings: Settings, tmp_path: Path) -> None:
    """mm/core.c warns about `spare` before the series; a patch moves it down two lines."""
    patches = [
        WrittenPatch(
            "mm/core: document core_setup",
            [
                replace_in(
                    "mm/core.c",
                    "int core_setup(void)\n{",
                    "/* Set the core up. */\n/* Returns the number of foos. */\n"
                    "int core_setup(void)\n{",
                )
            ],
        )
    ]
    result = check(patches, settings, tmp_path)
    assert problems(result) == [], described(result)
    assert any("mm/core.o" in v.objects for v in result.variants), described(result)


def test_removed_stub_breaks_its_caller_at_that_patch(settings: Settings, tmp_path: Path) -> None:
    """quux_level() loses its !CONFIG_QUUX stub in patch 2; QUUX is off in the defconfig."""
    patches = [
        WrittenPatch(
            "mm/core: reword a comment",
            [replace_in("mm/core.c", "part of the base", "kept in the base")],
        ),
        WrittenPatch(
            "quux: declare quux_level() only with CONFIG_QUUX",
            [
                replace_in(
                    "include/linux/quux.h",
                    "#else\nstatic inline int quux_level(void)\n{\n\treturn 0;\n}\n",
                    "",
                )
            ],
        ),
    ]
    result = check(patches, settings, tmp_path)
    found = problems(result)
    assert len(found) == 1, described(result)
    f = found[0]
    assert (f.severity, f.file, f.patch) == ("error", "mm/core.c", 2)
    assert "quux_level" in f.message
    assert f.config == "defconfig" and "QUUX" not in f.symbols  # off in the base already


def test_stub_removal_alone_is_built(settings: Settings, tmp_path: Path) -> None:
    """Only an #else stub goes: the declaration around the hunk names the callers."""
    patches = [
        WrittenPatch(
            "quux: declare quux_level() only with CONFIG_QUUX",
            [
                replace_in(
                    "include/linux/quux.h",
                    "#else\nstatic inline int quux_level(void)\n{\n\treturn 0;\n}\n",
                    "",
                )
            ],
        )
    ]
    found = problems(check(patches, settings, tmp_path))
    assert [(f.file, f.patch) for f in found] == [("mm/core.c", 1)]


def test_a_cross_compiler_missing_from_path_is_a_fault_of_ours(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """arm64 is configured, aarch64-linux-gnu-gcc is not on PATH: x86_64 is still built, and
    the result is ERRORED with the fault (the pipeline holds the series, mails nothing)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in ("/usr/local/bin", "/usr/bin"):  # the system's programs, not a user's shims
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith("aarch64-linux-gnu-") or (bin_dir / name).exists():
                continue
            (bin_dir / name).symlink_to(os.path.join(d, name))
    monkeypatch.setenv("PATH", str(bin_dir))
    wt = fake_tree(tmp_path / "linux")
    both = settings.model_copy(update={"build": BuildSettings(arches=["x86_64", "arm64"])})
    patches = [
        WrittenPatch(
            "mm/core: reword a comment",
            [replace_in("mm/core.c", "part of the base", "kept in the base")],
        )
    ]
    ctx = kernel.series_context(wt, patches, both, tmp_path, cache_dir=tmp_path / "cache")
    result = BuildCheck().run(ctx)
    assert result.status is CheckStatus.ERRORED
    assert "aarch64-linux-gnu-gcc not found" in result.fault
    assert [v.arch for v in result.variants] == ["x86_64"]
    missing = [n for n in result.notes if n.kind == "toolchain-missing"]
    assert missing and "apt-get install gcc-aarch64-linux-gnu" in missing[0].message


def test_a_follow_up_reuses_the_configs_of_its_tree(settings: Settings, tmp_path: Path) -> None:
    """A follow-up's base is its parent's head, a new commit with the tree's Kconfig: the
    configs made at the tree's base serve it, and what it makes never serves the tree."""
    wt = fake_tree(tmp_path / "linux")
    base = kernel.git(wt, "rev-parse", "HEAD").strip()
    settings = settings.model_copy(update={"build": BuildSettings(arches=["x86_64"])})
    cache = tmp_path / "cache"
    first = [WrittenPatch("mm/core: reword", [replace_in("mm/core.c", "part of", "kept in")])]
    parent = kernel.series_context(wt, first, settings, tmp_path / "parent", cache_dir=cache)
    BuildCheck().run(parent)
    logs = sorted(p.name for p in (tmp_path / "parent" / "logs").iterdir())
    assert any(n.endswith("-x86_64-defconfig.log") for n in logs), logs
    follow = [WrittenPatch("mm/core: reword again", [replace_in("mm/core.c", "kept", "held")])]
    ctx = kernel.series_context(wt, follow, settings, tmp_path / "follow", cache_dir=cache)
    ctx.tree_base = base  # the follow-up's base is the parent's head, not the tree's
    assert not ctx.trusted_base
    result = BuildCheck().run(ctx)
    assert result.status is CheckStatus.PASSED and result.variants, described(result)
    logs = sorted(p.name for p in (tmp_path / "follow" / "logs").iterdir())
    assert not any("defconfig" in n for n in logs), logs  # no make defconfig/olddefconfig
    assert any(n.endswith("-x86_64-build.log") for n in logs), logs


def test_a_reroll_reuses_the_results_of_the_patches_it_shares(
    settings: Settings, tmp_path: Path
) -> None:
    """v2 keeps v1's first two patches (same patch-ids) and changes the third: v1's build
    results for patches 1-2 are taken, only patch 3 is built, the finding is the same."""
    wt = fake_tree(tmp_path / "linux")
    base = kernel.git(wt, "rev-parse", "HEAD").strip()
    settings = settings.model_copy(update={"build": BuildSettings(arches=["x86_64"])})
    cache = tmp_path / "cache"
    shared = [
        WrittenPatch("mm/core: reword", [replace_in("mm/core.c", "part of", "kept in")]),
        WrittenPatch(
            "mm/core: start from the first foo",
            [
                replace_in(
                    "mm/core.c", "\treturn foo_count();\n", "\treturn foo_get(0) + foo_count();\n"
                )
            ],
        ),
    ]
    runs = {}
    for name, last in (("v1", "kept in"), ("v2", "kept in the")):
        kernel.git(wt, "checkout", "-q", "--detach", base)
        third = WrittenPatch(f"mm/core: {name}", [replace_in("mm/core.c", last, "held in")])
        ctx = kernel.series_context(
            wt, [*shared, third], settings, tmp_path / name, cache_dir=cache
        )
        result = BuildCheck().run(ctx)
        builds = [  # make, or saved compile commands replayed
            p
            for p in (tmp_path / name / "logs").iterdir()
            if p.name.endswith(("-build.log", "-replay.log"))
        ]
        runs[name] = (result, len(builds))
    (v1, v1_builds), (v2, v2_builds) = runs["v1"], runs["v2"]
    assert [(f.patch, f.file, f.message) for f in problems(v2)] == [
        (f.patch, f.file, f.message) for f in problems(v1)
    ]
    assert [f.patch for f in problems(v2)] == [2]
    assert not any(n.kind == "steps-reused" for n in v1.notes)
    reused = [n.message for n in v2.notes if n.kind == "steps-reused"]
    assert reused and "patches 1-2" in reused[0] and "patch 3" in reused[0], described(v2)
    # v1: the baseline and three patches in each variant; v2: patch 3 alone
    lanes = len(v2.variants)
    assert (v1_builds, v2_builds) == (4 * lanes, lanes), described(v2)


def test_coverage_counts_both_sides_of_an_ifdef(settings: Settings, tmp_path: Path) -> None:
    """A header change on both sides of #ifdef CONFIG_FOO: defconfig compiles one side, the
    FOO=n variant the other; a line under a symbol no Kconfig has is compiled nowhere."""
    patches = [
        WrittenPatch(
            "foo: mark the declarations",
            [
                replace_in(
                    "include/linux/foo.h",
                    "int foo_count(void);\n#else",
                    "extern int foo_count(void);\n#else",
                ),
                replace_in("include/linux/foo.h", "\treturn 0;\n", "\treturn -0;\n"),
                replace_in(
                    "include/linux/foo.h",
                    "#endif /* _LINUX_FOO_H */",
                    "#ifdef CONFIG_NOWHERE\nint foo_nowhere(void);\n#endif\n\n"
                    "#endif /* _LINUX_FOO_H */",
                ),
            ],
        )
    ]
    result = check(patches, settings, tmp_path)
    cov = result.coverage
    assert cov is not None, described(result)
    # 2 changed lines on the sides of CONFIG_FOO, 4 added around CONFIG_NOWHERE
    assert (cov.lines, cov.covered) == (6, 5), (cov, described(result))
    [missing] = cov.uncovered
    assert (missing.file, missing.lines) == ("include/linux/foo.h", (15,))
    assert missing.reason == "symbol unsatisfiable"
    assert {v.flip for v in result.variants} >= {None, "FOO=n"}


def test_kconfig_solver_enables_a_symbol_without_a_prompt(
    settings: Settings, tmp_path: Path
) -> None:
    """mm/deep.o needs DEEP, which has no prompt and is on only with ZONE, which needs
    QUUX: the solver finds QUUX and ZONE, make olddefconfig confirms, deep.o compiles."""
    patches = [
        WrittenPatch(
            "mm/deep: go deeper",
            [replace_in("mm/deep.c", "return 2;", "return 3;")],
        )
    ]
    result = check(patches, settings, tmp_path)
    built = {o for v in result.variants for o in v.objects}
    assert "mm/deep.o" in built, described(result)
    assert not result.uncompiled, described(result)
    cov = result.coverage
    assert cov is not None and cov.lines == cov.covered == 1, described(result)


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang (apt-get install clang)")
def test_llvm_is_a_second_toolchain(settings: Settings, tmp_path: Path) -> None:
    """With build.llvm_second the base config is built with clang too: clang's own words
    for a new error come as a finding of that build, with its reproduce line."""
    wt = fake_tree(tmp_path / "linux")
    settings = settings.model_copy(
        update={"build": BuildSettings(arches=["x86_64"], llvm_second=True)}
    )
    patch = WrittenPatch(
        "mm/core: call what does not exist",
        [replace_in("mm/core.c", "\treturn foo_count();\n", "\treturn foo_nothing();\n")],
    )
    ctx = kernel.series_context(wt, [patch], settings, tmp_path, cache_dir=tmp_path / "cache")
    result = BuildCheck().run(ctx)
    llvm = [v for v in result.variants if v.config.endswith("LLVM=1")]
    assert llvm and "mm/core.o" in llvm[0].objects, described(result)
    errors = {f.config: f for f in problems(result) if "foo_nothing" in f.message}
    assert set(errors) == {"defconfig", "defconfig LLVM=1"}, described(result)
    clang = errors["defconfig LLVM=1"]
    assert clang.compiler.startswith(("clang", "Debian clang")) and clang.line == 9
    assert any(" LLVM=1 " in f" {c} " for c in clang.reproduce)


def test_an_unsatisfiable_object_is_a_note_naming_the_conflict(
    settings: Settings, tmp_path: Path
) -> None:
    patches = [
        WrittenPatch("mm/never: return two", [replace_in("mm/never.c", "return 1;", "return 2;")])
    ]
    result = check(patches, settings, tmp_path)
    [note] = [n for n in result.notes if n.kind == "not-built"]
    assert "mm/never.o" in note.message and "NOWHERE" in note.message
    cov = result.coverage
    assert cov is not None and (cov.lines, cov.covered) == (1, 0)
    assert [(u.file, u.reason) for u in cov.uncovered] == [("mm/never.c", "symbol unsatisfiable")]


def test_symbols_the_series_adds_are_set_once_added(settings: Settings, tmp_path: Path) -> None:
    """A new driver behind a new symbol (GAUGE, which needs QUUX, off in the defconfig),
    and a new #ifdef on another new symbol (FOO_STATS): neither exists at the base, both
    are set after the patch that adds them, their code is compiled and covered, and the
    driver's W=1 warning is the patch's finding."""
    patches = gauge_series()
    result = check(patches, settings, tmp_path)
    built = {o for v in result.variants for o in v.objects}
    assert {"mm/gauge.o", "mm/foo.o"} <= built, described(result)
    assert not result.uncompiled, described(result)
    assert not [n for n in result.notes if n.kind in ("config-refused", "not-built")], described(
        result
    )
    cov = result.coverage
    assert cov is not None and cov.lines == cov.covered, (cov, described(result))
    [warning] = problems(result)
    assert (warning.file, warning.patch) == ("mm/gauge.c", 1), described(result)
    assert "'unused'" in warning.message and "GAUGE=y" in warning.config
    assert (
        "CONFIG_QUUX=y" in warning.config_fragment and "CONFIG_GAUGE=y" in warning.config_fragment
    )
    assert "FOO_STATS=y" in {v.flip for v in result.variants}, described(result)


def test_lines_behind_the_series_own_compile_error_say_so(
    settings: Settings, tmp_path: Path
) -> None:
    """A patch includes a header the tree lacks: the compiler stops there, no config
    compiles the file's changed lines, and coverage names the error, not Kconfig."""
    patches = [
        WrittenPatch(
            "mm/core: count twice",
            [
                replace_in(
                    "mm/core.c",
                    "\treturn foo_count();\n",
                    "\treturn foo_count() + foo_count();\n",
                ),
                replace_in("mm/core.c", "#include <linux/foo.h>\n", "#include <linux/nowhere.h>\n"),
            ],
        )
    ]
    result = check(patches, settings, tmp_path)
    [error] = [f for f in problems(result) if f.severity == "error"]
    assert (error.file, error.patch) == ("mm/core.c", 1) and "nowhere.h" in error.message
    cov = result.coverage
    assert cov is not None and (cov.lines, cov.covered) == (2, 0), described(result)
    assert [(u.file, u.reason) for u in cov.uncovered] == [("mm/core.c", "build error")]


def test_a_series_sent_again_is_built_at_its_last_patch(settings: Settings, tmp_path: Path) -> None:
    """The same series sent again (a RESEND): the results of its first patch are reused,
    its last patch is built, with the symbols the reused patch added set; coverage and
    findings are the first run's (nothing built would have left coverage at 0)."""
    wt = fake_tree(tmp_path / "linux")
    base = kernel.git(wt, "rev-parse", "HEAD").strip()
    settings = settings.model_copy(update={"build": BuildSettings(arches=["x86_64"])})
    runs = []
    for name in ("first", "again"):
        kernel.git(wt, "checkout", "-q", "--detach", base)
        ctx = kernel.series_context(
            wt, gauge_series(), settings, tmp_path / name, cache_dir=tmp_path / "cache"
        )
        runs.append(BuildCheck().run(ctx))
    first, again = runs
    assert first.coverage is not None and first.coverage.lines == first.coverage.covered
    assert again.coverage == first.coverage, described(again)
    assert [(f.patch, f.file, f.message) for f in problems(again)] == [
        (f.patch, f.file, f.message) for f in problems(first)
    ]
    [reused] = [n.message for n in again.notes if n.kind == "steps-reused"]
    assert "patch 1 is" in reused and "starts at patch 2" in reused, reused
    assert not [n for n in again.notes if n.kind == "config-refused"], described(again)
