"""The runtime check: the kernel's own host suites and KUnit, chosen by what a series changes.

The parsers and the table are tested on output the real suites printed; the
check itself on the real tree (linux-source-6.12): tools/testing/vma built and
run in the sandbox at the base and after each patch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.results import CheckResult, CheckStatus
from bot.report.render import render_replies
from checks.base import CheckContext
from checks.runtime import RuntimeCheck
from checks.runtime.outcome import RunState, parse_host, parse_ktap, scrub
from checks.runtime.table import host_suites, kunit_files, kunit_suite, load_table
from config.settings import Settings, load_settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

# what tools/testing/vma printed with an off-by-one in can_vma_merge_before()
VMA_FAILING = """\
Assert FAILED at vma.c:250:test_simple_merge(): (vma->vm_end) == (0x3000) is FALSE.
Test simple_merge FAILED
Assert FAILED at vma.c:443:test_merge_new(): (vma->vm_end) == (0x4000) is FALSE.
Test merge_new FAILED
15 tests run, 13 passed, 2 failed.

=================================================================
==18614==ERROR: LeakSanitizer: detected memory leaks
"""
MEMBLOCK = """\
ok 1 : memblock_initialization_check: passed
Running memblock_add tests...
ok 2 : memblock_add: memblock_add_simple_check: passed
not ok 3 : memblock_add: memblock_add_node_simple_check: failed
main: tests/basic_api.c:77: memblock_add_node_simple_check: Assertion `rgn->size == size' failed.
"""
KTAP = """\
[12:00:01] Configuring KUnit Kernel ...
KTAP version 1
1..1
    KTAP version 1
    # Subtest: cmdline
    # module: cmdline_kunit
    1..3
    ok 1 cmdline_test_noint
    # cmdline_test_lead_int: EXPECTATION FAILED at lib/cmdline_kunit.c:58
    Expected rc == 1, but
        rc == 0 (0x0)
    not ok 2 cmdline_test_lead_int
    ok 3 cmdline_test_tail_int # SKIP not on this arch
# cmdline: pass:1 fail:1 skip:1 total:3
not ok 1 cmdline
"""


def test_host_outputs_name_the_failing_tests() -> None:
    vma = parse_host(VMA_FAILING, 1)
    assert vma.state is RunState.FAILED
    assert (vma.passed, vma.failed) == (13, 2)
    assert [f.name for f in vma.failures][:2] == ["simple_merge", "merge_new"]
    assert "vma.c:250:test_simple_merge()" in vma.failures[0].excerpt
    mb = parse_host(MEMBLOCK, -6)
    assert (mb.passed, mb.failed) == (2, 1)
    assert mb.failures[0].name == "memblock_add: memblock_add_node_simple_check"
    xa = parse_host("BUG at check_xa_load:123\nXArray: 10 of 12 tests passed\n", 0)
    assert xa.state is RunState.FAILED and (xa.passed, xa.failed) == (10, 2)
    assert xa.failing == {"check_xa_load"}
    ok = parse_host("15 tests run, 15 passed, 0 failed.\n", 0)
    assert ok.ok and ok.counts == (15, 0, 0)
    crash = parse_host("something\n", -11)
    assert crash.state is RunState.FAILED and "signal 11" in crash.failures[0].excerpt
    assert scrub("/c/farm/tools/testing/vma/x.c: err", ["/c/farm"]) == "tools/testing/vma/x.c: err"


def test_ktap_counts_leaves_and_names_suite_and_case() -> None:
    run = parse_ktap(KTAP)
    assert run is not None
    assert (run.passed, run.failed, run.skipped) == (1, 1, 1)
    assert run.failing == {"cmdline.cmdline_test_lead_int"}
    assert "EXPECTATION FAILED" in run.failures[0].excerpt
    assert parse_ktap("make: *** [Makefile] Error 2\n") is None


def test_the_table_selects_suites_by_path() -> None:
    table = load_table()
    names = [s.name for s in host_suites(table, ["mm/vma.c", "mm/filemap.c"])]
    assert names == ["vma"]
    assert [s.name for s in host_suites(table, ["lib/maple_tree.c"])] == ["maple_tree"]
    assert [s.name for s in host_suites(table, ["include/linux/mm_types.h"])] == ["vma"]
    assert host_suites(table, ["mm/filemap.c"]) == []
    radix = host_suites(table, ["lib/radix-tree.c"])
    assert [s.name for s in radix] == ["radix-tree", "radix-tree-main"]
    assert radix[1].reproduce == (
        "make -C tools/testing/radix-tree main && ./tools/testing/radix-tree/main -s 1"
    )
    vma = host_suites(table, ["mm/mmap.c"])[0]
    assert vma.reproduce == "make -C tools/testing/vma vma && ./tools/testing/vma/vma"
    tree = {
        "lib/cmdline.c": "int get_option(char **str, int *pint)",
        "lib/cmdline_kunit.c": 'static struct kunit_suite s = { .name = "cmdline" };\n'
        "kunit_test_suite(s);",
        "lib/string.c": "char *strcpy(char *dest, const char *src)",
    }
    picked = kunit_files(table, ["lib/cmdline.c", "lib/string.c"], tree.get)
    assert picked == ["lib/cmdline_kunit.c"]
    suite = kunit_suite(
        picked[0], tree[picked[0]], "obj-$(CONFIG_CMDLINE_KUNIT_TEST) += cmdline_kunit.o\n"
    )
    assert suite is not None and suite.symbol == "CMDLINE_KUNIT_TEST"
    assert suite.name == "cmdline"
    assert suite.kunitconfig == "CONFIG_KUNIT=y\nCONFIG_CMDLINE_KUNIT_TEST=y\n"


# The 6.12 stable tree calls vma_close() from mm/vma.c, and tools/testing/vma has no
# stub of it: the suite does not link at the imported base. Upstream added the stub;
# the tests that need a working suite commit it first, as the tree's own fix.
VMA_CLOSE_STUB = """extern const struct vm_operations_struct vma_dummy_vm_ops;

static inline void vma_close(struct vm_area_struct *vma)
{
\tif (vma->vm_ops && vma->vm_ops->close) {
\t\tvma->vm_ops->close(vma);
\t\tvma->vm_ops = &vma_dummy_vm_ops;
\t}
}
"""
MERGE_BEFORE = "if (vmg->next->vm_pgoff == vmg->pgoff + pglen)"


def _fix_vma_suite(wt: Path) -> None:
    replace_in(
        "tools/testing/vma/vma_internal.h",
        "extern const struct vm_operations_struct vma_dummy_vm_ops;\n",
        VMA_CLOSE_STUB,
    )(wt)
    kernel.git(wt, "add", "-A")
    kernel.git(
        wt,
        "-c",
        "user.name=T",
        "-c",
        "user.email=t@example.org",
        "commit",
        "-qm",
        "tools/testing/vma: add vma_close() stub",
    )


def _check_on_kernel(
    patches: list[WrittenPatch], settings: Settings, tmp_path: Path, fix_vma: bool = False
) -> tuple[CheckContext, CheckResult]:
    """The runtime check of `patches` on the imported tree (with the vma stub committed
    first, as the base, when `fix_vma`); the slot is put back afterwards."""
    wt = kernel.kernel_slot("runtime")
    if fix_vma:
        _fix_vma_suite(wt)
    ctx = kernel.series_context(wt, patches, settings, tmp_path)
    try:
        return ctx, RuntimeCheck().run(ctx)
    finally:
        kernel.git(wt, "reset", "-q", "--hard", kernel.REF)


@pytest.mark.kernel
def test_vma_off_by_one_is_found_and_attributed(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    ctx, result = _check_on_kernel(
        [
            WrittenPatch(
                "mm/vma: say what can_vma_merge_before() checks",
                [
                    replace_in(
                        "mm/vma.c",
                        "static bool can_vma_merge_before(",
                        "/* the range must end where next begins */\n"
                        "static bool can_vma_merge_before(",
                    )
                ],
            ),
            WrittenPatch(
                "mm/vma: merge with the next vma one page later",
                [replace_in("mm/vma.c", MERGE_BEFORE, MERGE_BEFORE[:-1] + " + 1)")],
            ),
        ],
        settings,
        tmp_path,
        fix_vma=True,
    )
    assert result.status is CheckStatus.FOUND, result.notes
    (f,) = result.findings
    assert f.check == "runtime" and f.patch == 2
    assert "simple_merge" in f.message and "merge_new" in f.message
    assert "Assert FAILED at vma.c:250:test_simple_merge()" in f.excerpt
    assert f.reproduce == ("make -C tools/testing/vma vma && ./tools/testing/vma/vma",)
    (suite,) = result.suites
    assert suite.suite == "vma" and suite.base == (15, 0, 0)
    assert suite.after is not None and suite.after[1] > 0
    # what the author reads
    (draft,) = render_replies(ctx.series, ctx.applied, list(result.findings), settings, "")
    assert draft.patch == 2
    assert "test simple_merge" in draft.body or "simple_merge" in draft.body
    assert "./tools/testing/vma/vma" in draft.body
    assert str(ctx.cache_dir) not in draft.body and str(ctx.worktree) not in draft.body


@pytest.mark.kernel
def test_a_suite_failing_at_the_base_is_a_note(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    # the imported base as it is: the vma suite does not link (no vma_close() stub)
    ctx, result = _check_on_kernel(
        [
            WrittenPatch(
                "mm/vma: merge with the next vma one page later",
                [replace_in("mm/vma.c", MERGE_BEFORE, MERGE_BEFORE[:-1] + " + 1)")],
            )
        ],
        settings,
        tmp_path,
    )
    assert result.status is CheckStatus.PASSED and not result.findings
    (note,) = [n for n in result.notes if n.kind == "fails-at-base"]
    assert note.message.startswith("vma: build failed at the base already")
    assert "vma_close" in note.detail
    (suite,) = result.suites
    assert suite.state_base == "build failed" and suite.base is None
    assert render_replies(ctx.series, ctx.applied, list(result.findings), settings, "") == []


@pytest.mark.kernel
@pytest.mark.timeout(3600)  # a cold UML kernel build (warm: a minute)
def test_a_kunit_suite_broken_by_a_patch_is_found_on_uml(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    # UML asked for: "auto", the default, boots x86_64 under QEMU where KVM runs a guest
    runtime = settings.runtime.model_copy(update={"kunit_platform": "um"})
    settings = settings.model_copy(update={"runtime": runtime})
    ctx, result = _check_on_kernel(
        [
            WrittenPatch(
                "lib/cmdline: a range is one option",
                [
                    replace_in(
                        "lib/cmdline.c",
                        "if (**str == '-')\n\t\treturn 3;",
                        "if (**str == '-')\n\t\treturn 1;",
                    )
                ],
            )
        ],
        settings,
        tmp_path,
    )
    assert result.status is CheckStatus.FOUND, result.notes
    (f,) = result.findings
    assert f.patch == 1 and f.file == "lib/cmdline_kunit.c"
    assert "cmdline.cmdline_test_range" in f.message
    # the source as the author has it, not as our build dir reached it
    assert "EXPECTATION FAILED at lib/cmdline_kunit.c:" in f.excerpt
    assert f.reproduce == (
        "printf 'CONFIG_KUNIT=y\\nCONFIG_CMDLINE_KUNIT_TEST=y\\n' > cmdline.kunitconfig",
        "./tools/testing/kunit/kunit.py run --kunitconfig=cmdline.kunitconfig --arch=um",
    )
    (suite,) = result.suites
    assert suite.suite == "kunit cmdline" and suite.kind == "kunit"
    assert suite.base is not None and suite.base[1] == 0 and suite.base[0] > 0
    assert suite.after is not None and suite.after[1] > 0
    (draft,) = render_replies(ctx.series, ctx.applied, list(result.findings), settings, "")
    assert "kunit.py run --kunitconfig=cmdline.kunitconfig" in draft.body


@pytest.mark.kernel
def test_a_correct_maple_tree_patch_passes_without_a_finding(
    kernel_git_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    _, result = _check_on_kernel(
        [
            WrittenPatch(
                "maple_tree: drop the parentheses around ma_is_root()'s test",
                [
                    replace_in(
                        "lib/maple_tree.c",
                        "\treturn ((unsigned long)node->parent & MA_ROOT_PARENT);",
                        "\t/* the root's parent pointer carries MA_ROOT_PARENT */\n"
                        "\treturn (unsigned long)node->parent & MA_ROOT_PARENT;",
                    )
                ],
            )
        ],
        settings,
        tmp_path,
    )
    assert result.status is CheckStatus.PASSED and not result.findings, result.notes
    (suite,) = result.suites
    assert suite.suite == "maple_tree" and suite.state_after == "passed"
    assert suite.after is not None and suite.after[0] > 0 and suite.after[1] == 0
    # a dear suite that passes after the series is not run at the base
    assert suite.state_base == "not run"


RUN_SH = """\
# a suite whose one test fails when lib/foo.c says BROKEN, and fails once (then
# passes: the marker stays in the suite's build dir) when it says FLAKY
if grep -q BROKEN ../../../lib/foo.c; then echo "not ok 1 : foo_test"; exit 1; fi
if grep -q FLAKY ../../../lib/foo.c && [ ! -e .ran ]; then
  touch .ran; echo "not ok 1 : foo_test"; exit 1
fi
echo "ok 1 : foo_test"
"""
TABLE = """\
[[host]]
name = "foo"
dir = "tools/testing/foo"
target = "all"
program = ["sh", "run.sh"]
paths = ["lib/foo.c"]
seconds = 1
"""


def _small_tree(path: Path) -> Path:
    (path / "lib").mkdir(parents=True)
    (path / "lib/foo.c").write_text("int foo(void)\n{\n\treturn 0;\n}\n")
    suite = path / "tools/testing/foo"
    suite.mkdir(parents=True)
    (suite / "Makefile").write_text("all:\n\t@true\n")
    (suite / "run.sh").write_text(RUN_SH)
    (suite / ".gitignore").write_text(".ran\n")
    kernel.git(path, "init", "-q")
    kernel.git(path, "add", "-A")
    kernel.git(path, "-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-qm", "base")
    return path


@pytest.mark.parametrize(
    ("word", "found"), [("FLAKY", False), ("BROKEN", True)], ids=["flaky", "broken"]
)
def test_a_failure_is_run_again_and_a_pass_then_is_a_flaky_note(
    tmp_path: Path, word: str, found: bool
) -> None:
    wt = _small_tree(tmp_path / "tree")
    table = tmp_path / "runtime.toml"
    table.write_text(TABLE)
    settings = load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[],
        trees=[],
        runtime={"table": str(table)},
    )
    ctx = kernel.series_context(
        wt,
        [
            WrittenPatch(
                "foo: a comment", [replace_in("lib/foo.c", "int foo", "/* x */\nint foo")]
            ),
            WrittenPatch(
                f"foo: {word}", [replace_in("lib/foo.c", "return 0;", f"return 0; /* {word} */")]
            ),
        ],
        settings,
        tmp_path,
        cache_dir=tmp_path / "cache",
    )
    result = RuntimeCheck().run(ctx)
    (suite,) = result.suites
    assert suite.base == (1, 0, 0)
    if found:
        (f,) = result.findings
        assert f.patch == 2 and f.message == "foo: test foo_test fails"
        assert f.reproduce == (
            "make -C tools/testing/foo all && cd tools/testing/foo && sh run.sh",
        )
        assert suite.after == (0, 1, 0)
    else:
        assert result.status is CheckStatus.PASSED and not result.findings
        (note,) = [n for n in result.notes if n.kind == "flaky"]
        assert "foo_test failed after the series and passed when run again" in note.message
        assert suite.after == (1, 0, 0)
    # the series' commit is checked out again
    assert kernel.git(wt, "rev-parse", "HEAD").strip() == ctx.head
