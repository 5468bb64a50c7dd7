"""Type resolution inside one file: which struct does an expression point to?

Not a C type checker: it follows declarations in scope (locals, parameters,
globals, typedefs), members of structs whose definition is known, casts,
`container_of`-style macros and functions whose return type is known. What
it cannot resolve it answers with '' and the caller reports nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node

from checks.semantic.cparse import FileDefs, declarator_name, text, type_name

# macro(ptr, type, member): the result has `type`
CONTAINER_MACROS = frozenset(
    {
        "container_of",
        "container_of_const",
        "list_entry",
        "list_first_entry",
        "list_last_entry",
        "list_first_entry_or_null",
        "list_last_entry_or_null",
        "hlist_entry",
        "hlist_entry_safe",
        "llist_entry",
        "rb_entry",
        "rb_entry_safe",
    }
)
# macro(type, member)
OFFSET_MACROS = frozenset({"offsetof", "offsetofend", "sizeof_field", "typeof_member"})
# macro(pos, head, member, ...): `pos` has the type
ITER_MACROS = frozenset(
    {
        "list_for_each_entry",
        "list_for_each_entry_safe",
        "list_for_each_entry_reverse",
        "list_for_each_entry_continue",
        "list_for_each_entry_from",
        "list_next_entry",
        "list_prev_entry",
        "list_for_each_entry_rcu",
        "hlist_for_each_entry",
        "hlist_for_each_entry_safe",
        "hlist_for_each_entry_rcu",
        "list_for_each_entry_safe_reverse",
        "llist_for_each_entry",
        "llist_for_each_entry_safe",
    }
)
_TYPE_ARG = re.compile(r"^\s*(?:const\s+|volatile\s+)*((?:struct|union)\s+\w+|\w+)\s*\**\s*$")


def split_args(args_text: str) -> list[str]:
    """Top-level comma-separated arguments of '(a, f(b, c), d)'."""
    inner = args_text.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in inner:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if cur or out:
        out.append("".join(cur).strip())
    return out


def type_arg(arg: str) -> str:
    """The type a macro's type argument names ('struct S', 'foo_t'), or ''."""
    m = _TYPE_ARG.match(arg)
    return " ".join(m.group(1).split()) if m else ""


@dataclass
class TypeDb:
    """Knowledge from outside the file: struct layouts, typedefs, declared names."""

    structs: dict[str, dict[str, str]] = field(default_factory=dict)  # type -> member -> type
    typedefs: dict[str, str] = field(default_factory=dict)
    # names declared elsewhere with a type of interest (fields, globals, functions returning it)
    carriers: dict[str, str] = field(default_factory=dict)

    def add_defs(self, defs: FileDefs) -> None:
        """Learn the structs and typedefs one parsed file defines."""
        for s, members in defs.structs.items():
            self.structs.setdefault(s, {}).update({m: v.type for m, v in members.items()})
        self.typedefs.update(defs.typedefs)


class FileTypes:
    """Resolves expression types in one parsed file against a TypeDb."""

    def __init__(self, defs: FileDefs, db: TypeDb):
        self.defs = defs
        self.db = db
        self._scopes: dict[int, dict[str, str]] = {}

    def resolve(self, t: str) -> str:
        """Follow typedefs to the struct/union they name."""
        for _ in range(8):
            nxt = self.defs.typedefs.get(t) or self.db.typedefs.get(t)
            if not nxt or nxt == t:
                break
            t = nxt
        return t

    def member_type(self, owner: str, member: str) -> str:
        """The type of owner.member, falling back to names declared with a known type."""
        owner = self.resolve(owner)
        table = self.defs.structs.get(owner)
        if table is not None and member in table:
            return self.resolve(table[member].type)
        known = self.db.structs.get(owner)
        if known is not None and member in known:
            return self.resolve(known[member])
        if table is None and known is None:
            return self.resolve(self.db.carriers.get(member, ""))
        return ""

    def _locals(self, fn: Node) -> dict[str, str]:
        key = fn.id
        if key not in self._scopes:
            scope: dict[str, str] = {}
            for n in _walk_decls(fn):
                t = type_name(n.child_by_field_name("type"))
                for d in n.children_by_field_name("declarator"):
                    name = declarator_name(d)
                    if name is not None and t:
                        scope.setdefault(text(name), t)
            self._scopes[key] = scope
        return self._scopes[key]

    def name_type(self, node: Node, name: str) -> str:
        """The declared type of identifier `name` as seen at `node`."""
        p = node.parent
        while p is not None:
            if p.type == "function_definition":
                t = self._locals(p).get(name)
                if t:
                    return self.resolve(t)
                break
            p = p.parent
        t = self.defs.globals.get(name) or self.db.carriers.get(name, "")
        return self.resolve(t)

    def expr_type(self, node: Node | None, depth: int = 0) -> str:
        """The struct/union (or other base type) an expression has or points to; '' if unknown."""
        if node is None or depth > 20:
            return ""
        kind = node.type
        if kind == "identifier":
            return self.name_type(node, text(node))
        if kind == "field_expression":
            owner = self.expr_type(node.child_by_field_name("argument"), depth + 1)
            member = text(node.child_by_field_name("field"))
            return (
                self.member_type(owner, member)
                if owner
                else self.resolve(self.db.carriers.get(member, ""))
            )
        if kind in ("parenthesized_expression", "pointer_expression", "subscript_expression"):
            inner = node.child_by_field_name("argument") or (
                node.named_children[0] if node.named_children else None
            )
            return self.expr_type(inner, depth + 1)
        if kind == "cast_expression":
            return self.resolve(type_name(node.child_by_field_name("type")))
        if kind == "call_expression":
            fn = text(node.child_by_field_name("function"))
            args = split_args(text(node.child_by_field_name("arguments")))
            if fn in CONTAINER_MACROS and len(args) >= 2:
                return self.resolve(type_arg(args[1]))
            sigs = self.defs.functions.get(fn)
            ret = sigs[0].ret.rstrip("*") if sigs else self.db.carriers.get(fn, "")
            return self.resolve(ret)
        if kind == "compound_literal_expression":
            return self.resolve(type_name(node.child_by_field_name("type")))
        return ""

    def initializer_type(self, init_list: Node, depth: int = 0) -> str:
        """The type an initializer list `{ ... }` initialises; '' if unknown."""
        p = init_list.parent
        if p is None or depth > 10:
            return ""
        if p.type == "init_declarator":
            decl = p.parent
            return self.resolve(type_name(decl.child_by_field_name("type"))) if decl else ""
        if p.type == "compound_literal_expression":
            return self.resolve(type_name(p.child_by_field_name("type")))
        if p.type == "initializer_list":
            return self.initializer_type(p, depth + 1)
        if p.type == "initializer_pair" and p.parent is not None:
            outer = self.initializer_type(p.parent, depth + 1)
            designators = p.children_by_field_name("designator")
            last = designators[-1] if designators else None
            if outer and last is not None and last.type == "field_designator":
                return self.member_type(outer, text(last.named_children[0]))
            return outer if last is not None and last.type == "subscript_designator" else ""
        return ""


def _walk_decls(fn: Node) -> list[Node]:
    """Parameter and local declarations of a function definition."""
    out: list[Node] = []
    stack = [fn]
    while stack:
        n = stack.pop()
        if n.type in ("declaration", "parameter_declaration"):
            out.append(n)
        stack.extend(c for c in n.named_children if c.type not in ("function_definition",))
    return out
