"""Fast unit tests of the pure parts of the build check (no kernel tree, no compiler)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.diff import parse_diff
from checks.build.added import declared, dependencies, new_symbols
from checks.build.cond import Cond, conditions, conditions_at, parse_condition
from checks.build.diagnostics import PathMap, parse
from checks.build.impact import (
    Flip,
    Impact,
    analyze,
    called_identifiers,
    changed_identifiers,
    declaration_flips,
    enclosing_names,
    include_name,
    line_flips,
)
from checks.build.kbuild import ObjectChain, object_chain, parse_rules
from checks.build.toolchains import load_arches, parse_arches
from checks.build.variants import (
    buildable,
    config_block,
    enclosing_config,
    flip_needed,
    fragment,
    helpers_for,
    label,
    read_config,
    refusals,
    select_arches,
    symbols_diff,
)

# --- kbuild -----------------------------------------------------------------

MM_MAKEFILE = """\
obj-y := filemap.o mempool.o \\
\t   readahead.o
obj-$(CONFIG_MEMORY_BALLOON) += balloon_compaction.o
obj-$(CONFIG_ZSMALLOC)\t+= zsmalloc.o
obj-$(CONFIG_DAMON) += damon/
zswap-y := zswap_core.o zswap_lru.o
zswap-$(CONFIG_ZSWAP_STATS) += zswap_stats.o
obj-$(CONFIG_ZSWAP) += zswap.o
# obj-$(CONFIG_OLD) += old.o
"""

TREE = {
    "Kbuild": "obj-y += mm/\nobj-y += drivers/\n",
    "mm/Makefile": MM_MAKEFILE,
    "mm/damon/Makefile": "obj-y := core.o\nobj-$(CONFIG_DAMON_VADDR) += vaddr.o\n",
    "drivers/Makefile": "obj-$(CONFIG_VIRTIO) += virtio/\n",
    "drivers/virtio/Makefile": "obj-$(CONFIG_VIRTIO_BALLOON) += virtio_balloon.o\n",
    "drivers/gpu/i915/Makefile": "i915-y += gem/shmem.o\nobj-$(CONFIG_DRM_I915) += i915.o\n",
    "drivers/gpu/Makefile": "obj-y += i915/\n",
}


def read(path: str) -> str | None:
    return TREE.get(path)


def test_parse_rules_joins_continuations_and_skips_comments() -> None:
    rules = parse_rules(MM_MAKEFILE)
    assert rules[0].targets == ("filemap.o", "mempool.o", "readahead.o")
    assert rules[0].symbol is None
    assert ("obj", "MEMORY_BALLOON") in {(r.name, r.symbol) for r in rules}
    assert not any("old.o" in r.targets for r in rules)


def test_object_chain_simple_and_gated() -> None:
    assert object_chain("mm/filemap.c", read) == ObjectChain(
        "mm/filemap.c", "mm/filemap.o", (), True
    )
    assert object_chain("mm/balloon_compaction.c", read).symbols == ("MEMORY_BALLOON",)


def test_object_chain_composite_and_directory_descent() -> None:
    assert object_chain("mm/zswap_stats.c", read).symbols == ("ZSWAP_STATS", "ZSWAP")
    assert object_chain("mm/zswap_core.c", read).symbols == ("ZSWAP",)
    assert object_chain("mm/damon/vaddr.c", read).symbols == ("DAMON_VADDR", "DAMON")
    assert object_chain("drivers/virtio/virtio_balloon.c", read).symbols == (
        "VIRTIO_BALLOON",
        "VIRTIO",
    )


def test_object_chain_named_from_an_ancestor_directory() -> None:
    chain = object_chain("drivers/gpu/i915/gem/shmem.c", read)
    assert chain.found and chain.symbols == ("DRM_I915",)


def test_object_chain_unknown_file() -> None:
    assert not object_chain("mm/included.c", read).found


# --- cond -------------------------------------------------------------------

SOURCE = """\
#ifndef _LINUX_X_H
#define _LINUX_X_H
#ifdef CONFIG_MIGRATION
int a(void);
#else
static inline int a(void) { return 0; }
#endif
#if IS_ENABLED(CONFIG_A) && !defined(CONFIG_B)
int b;
#elif defined(CONFIG_C)
int c;
#else
int d;
#endif
#if defined(CONFIG_X) || \\
    defined(CONFIG_Y)
int e;
#endif
#endif
"""


def test_parse_condition_atoms() -> None:
    assert parse_condition("IS_ENABLED(CONFIG_A) && !defined(CONFIG_B)") == (
        (Cond("A", True), Cond("B", False)),
        True,
    )
    assert parse_condition("IS_MODULE(CONFIG_A) /* comment */") == ((Cond("A", True),), True)
    # each side of || is enough on its own: alternatives, not requirements
    assert parse_condition("defined(CONFIG_X) || defined(CONFIG_Y)") == (
        (Cond("X", True, alternative=True), Cond("Y", True, alternative=True)),
        False,
    )
    assert parse_condition("defined(CONFIG_X) || (CONFIG_Y > 2)") == (
        (Cond("X", None), Cond("Y", None)),
        False,
    )
    assert parse_condition("defined(__KERNEL__)") == ((), False)


def test_conditions_branches() -> None:
    assert conditions_at(SOURCE, 4) == (Cond("MIGRATION", True),)
    assert conditions_at(SOURCE, 6) == (Cond("MIGRATION", False),)
    assert conditions_at(SOURCE, 9) == (Cond("A", True), Cond("B", False))
    assert conditions_at(SOURCE, 11) == (Cond("C", True), Cond("A", None), Cond("B", None))
    assert set(conditions_at(SOURCE, 13)) == {Cond("A", None), Cond("B", None), Cond("C", False)}
    assert conditions_at(SOURCE, 17) == (
        Cond("X", True, alternative=True),
        Cond("Y", True, alternative=True),
    )
    assert conditions_at(SOURCE, 19) == ()
    assert len(conditions(SOURCE)) == len(SOURCE.splitlines())


# --- diagnostics --------------------------------------------------------------

GCC = (
    "In file included from /src/include/linux/mm.h:12,\n"
    "                 from /src/mm/filemap.c:20:\n"
    "/src/include/linux/x.h:5:3: warning: unused variable 'x' [-Wunused-variable]\n"
    "/src/mm/filemap.c: In function 'filemap_remove_folio':\n"
    "/src/mm/filemap.c:253:13: warning: variable 'removed' set but not used"
    " [-Wunused-but-set-variable]\n"
    "  253 |         int removed;\n"
    "      |             ^~~~~~~\n"
    "../../slots/a/mm/filemap.c:254:9: error: implicit declaration of function 'f'"
    " [-Werror=implicit-function-declaration]\n"
    "/src/mm/filemap.c:254:9: note: did you mean 'g'?\n"
    "cc1: some warnings being treated as errors\n"
    "make[4]: *** [scripts/Makefile.build:229: mm/filemap.o] Error 1\n"
    "/src/mm/a.c:1:10: fatal error: linux/nope.h: No such file or directory\n"
)


def test_parse_gcc_output() -> None:
    diags = parse(GCC, lambda p: p.removeprefix("/src/").removeprefix("../../slots/a/"))
    assert [(d.file, d.line, d.severity, d.option) for d in diags] == [
        ("include/linux/x.h", 5, "warning", "-Wunused-variable"),
        ("mm/filemap.c", 253, "warning", "-Wunused-but-set-variable"),
        ("mm/filemap.c", 254, "error", "-Wimplicit-function-declaration"),
        ("mm/a.c", 1, "error", ""),
    ]
    assert diags[0].include_chain == ("include/linux/mm.h:12", "mm/filemap.c:20")
    assert diags[1].include_chain == () and diags[1].function == "filemap_remove_folio"
    assert diags[2].notes == ("did you mean 'g'?",)


def test_key_ignores_line_numbers() -> None:
    a = parse("/s/m.c:10:2: warning: 'x' defined at m.c:3 unused [-Wunused]\n")[0]
    b = parse("/s/m.c:99:7: warning: 'x' defined at m.c:8 unused [-Wunused]\n")[0]
    assert a.key == b.key and a.line != b.line


def test_path_map(tmp_path: object) -> None:
    pm = PathMap("/srv/slot", "/srv/build/x86")
    assert pm("/srv/slot/mm/a.c") == "mm/a.c"
    assert pm("../../slot/mm/a.c") == "mm/a.c"
    assert pm("include/generated/x.h") == "include/generated/x.h"
    assert pm("/usr/include/stdio.h") == "/usr/include/stdio.h"


# --- impact -------------------------------------------------------------------

DIFF = """\
diff --git a/mm/filemap.c b/mm/filemap.c
index 1..2 100644
--- a/mm/filemap.c
+++ b/mm/filemap.c
@@ -3,3 +3,4 @@ void f(void)
 {
 \tBUG_ON(x);
+\tfolio_migrate_flags(folio, folio);
 \tspin_lock(&l);
diff --git a/include/linux/b.h b/include/linux/b.h
--- a/include/linux/b.h
+++ b/include/linux/b.h
@@ -1,4 +1,3 @@
 struct b {
-\tint (*migratepage)(struct b *, int mode);
 \tint pages;
 };
"""

HEADER = """\
#ifdef CONFIG_MIGRATION
void folio_migrate_flags(struct folio *newfolio, struct folio *folio);
#endif
#ifdef CONFIG_COMPACTION
bool PageMovable(struct page *page);
#else
static inline bool PageMovable(struct page *page) { return false; }
#endif
"""


class FakeTree:
    """A tree in a dict, grepped with Python regexes (close enough to git grep -E)."""

    def __init__(self, files: dict[str, str]):
        self.files = files

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def grep(
        self,
        patterns: Sequence[str],
        paths: Sequence[str],
        *,
        word: bool = False,
        fixed: bool = False,
        files_only: bool = False,
    ) -> list[tuple[str, int, str]]:
        import fnmatch
        import re

        regs = [re.escape(p) if fixed else p.replace("[[:space:]]", r"\s") for p in patterns]
        if word:
            regs = [rf"\b(?:{r})\b" for r in regs]
        hits = []
        for path, text in sorted(self.files.items()):
            if not any(fnmatch.fnmatch(path, g) for g in paths):
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if any(re.search(r, line) for r in regs):
                    hits.append((path, 0 if files_only else n, "" if files_only else line))
                    if files_only:
                        break
        return hits


def test_called_identifiers_skip_keywords_and_macros() -> None:
    assert called_identifiers(
        ["\tif (foo(x) && BAR(y)) return sizeof(z) + baz (1);", ' pr_err("qux(%d)", 1);']
    ) == ["foo", "baz"]


def test_declaration_only_under_config_gives_flip() -> None:
    tree = FakeTree({"include/linux/migrate.h": HEADER})
    flips = declaration_flips(tree, ["folio_migrate_flags", "PageMovable"], ["include/*.h"])
    assert [(f.symbol, f.value, f.priority) for f in flips] == [("MIGRATION", "n", 0)]


def test_changed_identifiers_and_include_name() -> None:
    ch = parse_diff(DIFF)[1]
    assert changed_identifiers(ch, "struct b {\n\tint pages;\n};\n") == ["migratepage", "mode"]
    comment_only = parse_diff(
        "diff --git a/b.h b/b.h\n--- a/b.h\n+++ b/b.h\n@@ -1 +1 @@\n"
        "-\tspinlock_t pages_lock;\t/* Protection */\n+\tspinlock_t pages_lock; /* Lock */\n"
    )[0]
    assert changed_identifiers(comment_only, "") == []
    assert include_name("include/linux/b.h") == "linux/b.h"
    assert include_name("arch/x86/include/asm/a.h") == "asm/a.h"
    assert include_name("mm/internal.h") is None


def test_analyze_objects_flips_and_header_users() -> None:
    tree = FakeTree(
        {
            **TREE,
            "include/linux/migrate.h": HEADER,
            "include/linux/b.h": "struct b {\n\tint pages;\n};\n",
            "mm/filemap.c": "void f(void)\n{\n\tBUG_ON(x);\n\tfolio_migrate_flags(folio, folio);\n"
            "\tspin_lock(&l);\n}\n",
            "mm/balloon_compaction.c": "#include <linux/b.h>\n#ifdef CONFIG_BALLOON_COMPACTION\n"
            "int m(struct b *b) { return b->migratepage(b, 0); }\n"
            "#endif\n",
        }
    )
    impact = analyze(DIFF, tree, max_header_objects=4)
    assert [o.object for o in impact.objects] == ["mm/filemap.o", "mm/balloon_compaction.o"]
    assert impact.w1_objects == {"mm/filemap.o"}
    assert [(f.symbol, f.value, f.priority) for f in impact.flips] == [
        ("MIGRATION", "n", 0),
        ("BALLOON_COMPACTION", "y", 2),
    ]
    assert impact.srcarches == ()


# --- variants and toolchains ----------------------------------------------------

ARCHES = load_arches()


def test_arches_table() -> None:
    assert {"x86_64", "i386", "arm64", "powerpc"} <= set(ARCHES)
    ppc = ARCHES["powerpc"]
    assert ppc.make_vars(ccache=False) == ["ARCH=powerpc", "CROSS_COMPILE=powerpc64le-linux-gnu-"]
    assert "CC=ccache powerpc64le-linux-gnu-gcc" in ppc.make_vars()
    assert ARCHES["x86_64"].make_vars(llvm=True, ccache=False) == ["ARCH=x86_64", "LLVM=1"]
    assert (
        parse_arches(
            '[[arch]]\nname="a"\nkarch="a"\nsrcarch="a"\ncross_compile=""\n'
            'defconfig="d"\npackage="gcc"\n'
        )["a"].defconfig
        == "d"
    )


def test_read_config_and_helpers() -> None:
    cfg = read_config('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\nCONFIG_S="x"\n')
    assert cfg == {"A": "y", "B": "n", "C": "m", "S": '"x"'}
    assert refusals(cfg, {"A": "n", "C": "y", "D": "n"}) == ["A=n (got y)"]
    assert buildable(ObjectChain("a.c", "a.o", ("A", "C"), True), cfg)
    assert not buildable(ObjectChain("b.c", "b.o", ("B",), True), cfg)
    assert (
        label("defconfig", {"A": "y"}, {"A": "n", "C": "m"}, {"A": "n", "C": "y"})
        == "defconfig A=n C=m"
    )
    assert symbols_diff({"A": "y"}, {"A": "n", "B": "n"}, ["A", "B"]) == {"A": "n"}
    assert fragment({"A": "n", "C": "y"}) == "# CONFIG_A is not set\nCONFIG_C=y"
    assert flip_needed(cfg, Flip("A", "n", 0, "")) and not flip_needed(cfg, Flip("B", "n", 0, ""))


KCONFIG = """\
config MEMORY_BALLOON
\tbool

config BALLOON_COMPACTION
\tbool "Allow for balloon memory compaction/migration"
\tdefault y
\tdepends on COMPACTION && MEMORY_BALLOON && !FOO

config COMPACTION
\tbool "Allow for memory compaction"
\tselect MIGRATION
"""


def test_kconfig_helpers() -> None:
    assert config_block(KCONFIG, "MEMORY_BALLOON") == (False, [])
    assert config_block(KCONFIG, "BALLOON_COMPACTION") == (True, ["COMPACTION", "MEMORY_BALLOON"])
    assert enclosing_config(KCONFIG, 11) == "COMPACTION"
    cfg = {"COMPACTION": "y", "CMA": "n"}
    assert helpers_for("MIGRATION", "n", cfg, ["CMA", "COMPACTION"], [], True) == {
        "COMPACTION": "n"
    }
    assert helpers_for("MEMORY_BALLOON", "y", cfg, ["VIRTIO_BALLOON"], [], False) == {
        "VIRTIO_BALLOON": "y"
    }


def test_select_arches_adds_touched_arch_dirs() -> None:
    ppc_obj = ObjectChain("arch/powerpc/cmm.c", "arch/powerpc/cmm.o", ("CMM",), True)
    mm_obj = ObjectChain("mm/b.c", "mm/b.o", ("MEMORY_BALLOON",), True)
    imp = Impact(objects=(ppc_obj, mm_obj), srcarches=("powerpc",))
    arches = select_arches([imp], ARCHES, ["x86_64", "arm64"])
    assert [a.name for a in arches] == ["x86_64", "arm64", "powerpc"]
    only_ppc = Impact(objects=(ppc_obj,), srcarches=("powerpc",))
    assert [a.name for a in select_arches([only_ppc], ARCHES, ["x86_64"])] == ["powerpc"]


def test_header_users_through_names_and_for_a_comment_change() -> None:
    """A comment in a struct: users of the struct's name; a name used only through another
    header: found tree-wide; every changed name is used by one of the first files."""
    header = "struct ina_pdata {\n\tlong shunt;\t/* uohm */\n};\n"
    tree = FakeTree(
        {
            **TREE,
            "include/linux/ina.h": header,
            "drivers/hwmon/ina209.c": "#include <linux/ina.h>\n"
            "static int f(struct ina_pdata *p) { return p->shunt; }\n",
            "drivers/hwmon/ina238.c": "#include <linux/ina.h>\nint g;\n",
            "drivers/other.c": "#include <linux/all.h>\nint h(struct ina_pdata *p);\n",
            "drivers/hwmon/Makefile": "obj-$(CONFIG_SENSORS_INA209) += ina209.o\n"
            "obj-$(CONFIG_SENSORS_INA238) += ina238.o\n",
            "drivers/Makefile": "obj-$(CONFIG_HWMON) += hwmon/\nobj-y += other.o\n",
        }
    )
    diff = (
        "diff --git a/include/linux/ina.h b/include/linux/ina.h\n"
        "--- a/include/linux/ina.h\n+++ b/include/linux/ina.h\n@@ -1,3 +1,3 @@\n"
        " struct ina_pdata {\n-\tlong shunt;\n+\tlong shunt;\t/* uohm */\n };\n"
    )
    assert enclosing_names(header, [2]) == ["ina_pdata"]
    impact = analyze(diff, tree, max_header_objects=2)
    objects = [o.object for o in impact.objects]
    assert objects[0] == "drivers/hwmon/ina209.o"  # uses the struct and is in an includer
    assert "drivers/other.o" not in objects
    tree.files["drivers/hwmon/ina209.c"] = "#include <linux/ina.h>\nint f;\n"
    objects = [o.object for o in analyze(diff, tree, max_header_objects=2).objects]
    assert objects[0] == "drivers/other.o"  # no includer uses it: found through another header


def test_makefile_conditionals_gate_the_objects_inside() -> None:
    mk = (
        "obj-y += a.o\n"
        "ifdef CONFIG_SWAP\nobj-$(CONFIG_MEMCG) += swap_cgroup.o\nendif\n"
        "ifeq ($(CONFIG_NUMA),y)\nobj-y += numa.o\nelse\nobj-y += flat.o\nendif\n"
        "ifneq ($(CONFIG_HOTPLUG),)\nobj-y += hot.o\nendif\n"
    )
    files = {"Makefile": "obj-y += mm/\n", "mm/Makefile": mk}

    def chain(src: str) -> tuple[str, ...]:
        return object_chain(src, files.get).symbols

    assert chain("mm/a.c") == ()
    assert chain("mm/swap_cgroup.c") == ("MEMCG", "SWAP")
    assert chain("mm/numa.c") == ("NUMA",)
    assert chain("mm/flat.c") == ()  # NUMA off: not a chain symbol (nothing to switch on)
    assert chain("mm/hot.c") == ("HOTPLUG",)


def test_or_conditions_give_one_flip_per_side_and_an_exact_else() -> None:
    text = "#if defined(CONFIG_A) || IS_ENABLED(CONFIG_B)\nint x;\n#else\nint y;\n#endif\n"
    table = conditions(text)
    assert {(c.symbol, c.on, c.alternative) for c in table[1]} == {
        ("A", True, True),
        ("B", True, True),
    }
    assert set(table[3]) == {Cond("A", False), Cond("B", False)}
    assert {(f.symbol, f.value) for f in line_flips("x.c", text, [2], 1)} == {
        ("A", "y"),
        ("B", "y"),
    }
    assert {(f.symbol, f.value) for f in line_flips("x.c", text, [4], 1)} == {
        ("A", "n"),
        ("B", "n"),
    }


def test_a_chain_needing_an_arch_only_symbol_needs_that_arch() -> None:
    from checks.build.archdeps import needed_srcarches, symbol_arches

    tree = FakeTree(
        {
            "drivers/hwmon/Kconfig": 'config SENSORS_IBMPOWERNV\n\ttristate "IBM POWERNV"\n'
            '\tdepends on PPC_POWERNV\n\nconfig SENSORS_LM75\n\ttristate "LM75"\n'
            "\tdepends on I2C\n",
            "drivers/i2c/Kconfig": 'config I2C\n\ttristate "I2C"\n',
            "arch/powerpc/platforms/powernv/Kconfig": 'config PPC_POWERNV\n\tbool "PowerNV"\n',
            "drivers/misc/Kconfig": 'config WIN\n\tbool "w"\n\tdepends on X86 || COMPILE_TEST\n',
        }
    )
    assert symbol_arches(tree, "PPC_POWERNV") == {"powerpc"}
    assert symbol_arches(tree, "SENSORS_IBMPOWERNV") == {"powerpc"}
    assert symbol_arches(tree, "SENSORS_LM75") == set()
    chains = [
        ObjectChain(
            "drivers/hwmon/ibmpowernv.c",
            "drivers/hwmon/ibmpowernv.o",
            ("SENSORS_IBMPOWERNV", "HWMON"),
            True,
        ),
        ObjectChain("drivers/hwmon/lm75.c", "drivers/hwmon/lm75.o", ("SENSORS_LM75",), True),
    ]
    assert needed_srcarches(tree, chains) == {"powerpc"}


def test_config_args_keep_the_case_of_mixed_case_symbols() -> None:
    from checks.build.make import config_args

    assert config_args({"MIGRATION": "n"}) == ["--disable", "MIGRATION"]
    assert config_args({"SENSORS_SHT3x": "y", "HWMON": "y"}) == [
        "--keep-case",
        "--enable",
        "SENSORS_SHT3x",
        "--enable",
        "HWMON",
    ]


NEW_DRIVER = """\
diff --git a/drivers/hwmon/Kconfig b/drivers/hwmon/Kconfig
--- a/drivers/hwmon/Kconfig
+++ b/drivers/hwmon/Kconfig
@@ -1,3 +1,13 @@
+config SENSORS_D3323AA
+	tristate "Nicera Pyroelectric IR sensors"
+	depends on GPIOLIB && OF && !COMPILE_TEST_ONLY
+	select BITREVERSE
+
+config SENSORS_D3323AA_REGULATOR
+	bool "Regulator support"
+	depends on SENSORS_D3323AA && REGULATOR
+
 config SENSORS_DRIVETEMP
diff --git a/drivers/hwmon/d3-323-aa.c b/drivers/hwmon/d3-323-aa.c
--- /dev/null
+++ b/drivers/hwmon/d3-323-aa.c
@@ -0,0 +1 @@
+config NOT_KCONFIG
"""


def test_symbols_a_series_adds_and_what_they_depend_on() -> None:
    """Declared in a patched Kconfig, unknown to the base (a moved symbol is not new);
    the dependencies come from the head, through added symbols, negations left out."""
    assert declared(NEW_DRIVER) == ["SENSORS_D3323AA", "SENSORS_D3323AA_REGULATOR"]
    base = FakeTree({"drivers/hwmon/Kconfig": "config SENSORS_D3323AA_REGULATOR\n\tbool\n"})
    assert new_symbols(NEW_DRIVER, base) == {"SENSORS_D3323AA"}
    base = FakeTree({"drivers/hwmon/Kconfig": "config SENSORS_DRIVETEMP\n"})
    added = new_symbols(NEW_DRIVER, base)
    assert added == {"SENSORS_D3323AA", "SENSORS_D3323AA_REGULATOR"}
    head_kconfig = "\n".join(line[1:] for line in NEW_DRIVER.splitlines()[4:13] if line[:1] in "+ ")
    head = FakeTree({"drivers/hwmon/Kconfig": head_kconfig})
    assert dependencies(head, added, ["SENSORS_D3323AA_REGULATOR", "HWMON"]) == [
        "REGULATOR",
        "GPIOLIB",
        "OF",
    ]
    assert dependencies(head, added, ["HWMON"]) == []
