"""The pure parts of the semantic check: diffs, definitions, types, Kbuild rules."""

from __future__ import annotations

from checks.semantic.changes import (
    broken_stubs,
    changed_prototypes,
    removed_members,
    removed_symbols,
)
from checks.semantic.cparse import FileDefs, file_defs, parse
from checks.semantic.types import FileTypes, TypeDb, split_args, type_arg
from checks.semantic.uses import member_uses, symbol_uses
from checks.semantic.where import guard_note, obj_rule

HEADER = b"""
#ifndef _LINUX_FOO_H
#define _LINUX_FOO_H
struct foo { int a; struct list_head pages; void (*cb)(int); union { int u1; long u2; }; };
typedef struct foo foo_t;
#define FOO_MAX 3
enum foo_state { FOO_ON, FOO_OFF };
extern struct foo global_foo;
#ifdef CONFIG_FOO
int foo_get(struct foo *f, int flags);
#else
static inline int foo_get(struct foo *f, int flags) { return 0; }
#endif
#endif
"""


def defs(src: bytes) -> FileDefs:
    return file_defs(parse(src))


def test_file_defs() -> None:
    d = defs(HEADER)
    assert set(d.structs["struct foo"]) == {"a", "pages", "cb", "u1", "u2"}
    assert d.structs["struct foo"]["cb"].function_pointer
    assert d.structs["struct foo"]["pages"].type == "struct list_head"
    assert d.typedefs == {"foo_t": "struct foo"}
    assert {"FOO_MAX", "FOO_ON", "global_foo", "foo_get"} <= set(d.symbols())
    sides = d.functions["foo_get"]
    assert [s.guards[-1] for s in sides] == ["CONFIG_FOO", "!CONFIG_FOO"]
    assert {s.shape for s in sides} == {("int", ("struct foo*", "int"), False)}


def test_removed_and_renamed_members() -> None:
    new = HEADER.replace(b"int a;", b"int b;").replace(b" void (*cb)(int);", b"")
    gone = removed_members(2, {"f.h": defs(HEADER)}, {"f.h": defs(new)})
    assert {(r.member, r.function_pointer, r.patch) for r in gone} == {
        ("a", False, 2),
        ("cb", True, 2),
    }


def test_removed_symbols_and_prototypes() -> None:
    new = (
        HEADER.replace(b"#define FOO_MAX 3\n", b"")
        .replace(b"int foo_get(struct foo *f, int flags);", b"int foo_get(struct foo *f);")
        .replace(
            b"static inline int foo_get(struct foo *f, int flags)",
            b"static inline int foo_get(struct foo *f)",
        )
    )
    old_d, new_d = {"f.h": defs(HEADER)}, {"f.h": defs(new)}
    assert [s.name for s in removed_symbols(1, old_d, new_d)] == ["FOO_MAX"]
    protos = changed_prototypes(1, old_d, new_d)
    assert [(p.name, len(p.old.params), len(p.new.params)) for p in protos] == [("foo_get", 2, 1)]
    assert broken_stubs(1, "f.h", old_d["f.h"], new_d["f.h"]) == []  # both sides changed


def test_stub_changed_on_one_side_only() -> None:
    new = HEADER.replace(b"int foo_get(struct foo *f, int flags);", b"int foo_get(struct foo *f);")
    (b,) = broken_stubs(3, "f.h", defs(HEADER), defs(new))
    assert b.name == "foo_get" and b.changed is not None and b.changed.params == ("struct foo*",)
    assert b.other.guards[-1] == "!CONFIG_FOO"
    removed = HEADER.replace(
        b"static inline int foo_get(struct foo *f, int flags) { return 0; }\n", b""
    )
    (r,) = broken_stubs(3, "f.h", defs(HEADER), defs(removed))
    assert r.changed is None and r.removed is not None and r.removed.guards[-1] == "!CONFIG_FOO"


USER = b"""
struct bar { struct foo embedded; struct foo *ptr; struct list_head pages; };
static struct bar the_bar;
static const struct foo ops = { .cb = f, .a = 1 };
static const struct other other_ops = { .cb = f };
static foo_t *get_foo(void);
int g(struct bar *b, struct other *o, void *p)
{
\tstruct foo *f = container_of(p, struct foo, pages);
\tfoo_t *t = p;
\tb->embedded.pages.next = 0;   /* b->embedded.pages in a comment */
\tb->ptr->a = 1;
\tb->pages.next = 0;
\to->pages = 0;
\tthe_bar.embedded.a = 2;
\tt->a = 3;
\tget_foo()->a = 4;
\t((struct foo *)p)->a = 5;
\treturn f->a + offsetof(struct foo, a) + FOO_MAX;
}
"""


def test_member_uses_are_type_aware() -> None:
    tree = parse(USER)
    db = TypeDb()
    db.add_defs(defs(HEADER))
    types = FileTypes(file_defs(tree), db)
    uses = member_uses(USER, tree, types, {"struct foo": {"pages", "a", "cb"}})
    got = sorted((u.line, u.name, u.how) for u in uses)
    assert got == [
        (4, "a", ".a = (initializer)"),
        (4, "cb", ".cb = (initializer)"),
        (9, "pages", "container_of"),
        (11, "pages", ".pages"),
        (12, "a", "->a"),
        (15, "a", ".a"),
        (16, "a", "->a"),
        (17, "a", "->a"),
        (18, "a", "->a"),
        (19, "a", "->a"),
        (19, "a", "offsetof"),
    ]


def test_symbol_uses_skip_comments_and_declarations() -> None:
    src = (
        b"/* FOO_MAX */\n#ifdef FOO_MAX\n#define TWICE (FOO_MAX * 2)\n#endif\n"
        b'int x = FOO_MAX; /* FOO_MAX */\nchar *s = "FOO_MAX";\n'
    )
    uses = symbol_uses(src, parse(src), {"FOO_MAX"})
    assert sorted((u.line, u.how) for u in uses) == [(3, "macro body"), (5, "reference")]


def test_kbuild_and_words() -> None:
    mk = (
        "obj-$(CONFIG_ZSMALLOC)\t+= zsmalloc.o\nzram-y := zcomp.o \\\n\tzram_drv.o\n"
        "obj-$(CONFIG_ZRAM) += zram.o\nobj-y += core.o\n"
    )
    assert obj_rule(mk, "zsmalloc.o") == "obj-$(CONFIG_ZSMALLOC)"
    assert obj_rule(mk, "zram_drv.o") == "zram-y via obj-$(CONFIG_ZRAM)"
    assert obj_rule(mk, "core.o") == "obj-y"
    assert obj_rule(mk, "nope.o") == ""
    assert guard_note(("!_LINUX_FOO_H", "CONFIG_A")) == "under #if CONFIG_A"
    assert split_args("(p, struct foo, f(a, b))") == ["p", "struct foo", "f(a, b)"]
    assert type_arg("const struct foo *") == "struct foo"


def test_removed_static_function_is_file_local() -> None:
    old = b"static int helper(void) { return 1; }\nint api(void) { return helper(); }\n"
    new = b"int api(void) { return helper(); }\n"
    (r,) = removed_symbols(1, {"mm/x.c": defs(old)}, {"mm/x.c": defs(new)})
    assert (r.name, r.what, r.file) == ("helper", "static function", "mm/x.c")


def test_members_under_ifdef_inside_a_struct() -> None:
    src = (
        b"struct inode {\n\tint i_mode;\n#ifdef CONFIG_CGROUP_WRITEBACK\n"
        b"\tu16 i_wb_frn_avg_time;\n#else\n\tint other;\n#endif\n};\n"
    )
    assert set(defs(src).structs["struct inode"]) == {"i_mode", "i_wb_frn_avg_time", "other"}
