"""Find, in one parsed file, the uses that a removed definition leaves behind."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tree_sitter import Node, Tree

from checks.semantic.cparse import occurrences, text
from checks.semantic.types import (
    CONTAINER_MACROS,
    ITER_MACROS,
    OFFSET_MACROS,
    FileTypes,
    split_args,
    type_arg,
)

_STRINGS_COMMENTS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|/\*.*?\*/|//[^\n]*', re.S)
_MEMBER_SLOT = CONTAINER_MACROS | OFFSET_MACROS | ITER_MACROS


@dataclass(frozen=True)
class Use:
    """One place in a file that uses a name."""

    name: str  # the member or symbol
    owner: str  # the struct type for members, '' for symbols
    line: int  # 1-based
    how: str  # "x->m", ".m = (initializer)", "offsetof", "call", "reference", ...
    node: Node


def _member_site(node: Node) -> tuple[str, Node] | None:
    """(how, site) when `node` (at a word occurrence) names a member; None otherwise."""
    p = node.parent
    if p is None:
        return None
    if node.type == "field_identifier":
        if p.type == "field_expression" and p.child_by_field_name("field") == node:
            return "field", p
        if (
            p.type == "field_designator"
            and p.parent is not None
            and (p.parent.type == "initializer_pair")
        ):
            return "designator", p.parent
        if p.type == "offsetof_expression":
            return "offsetof", p
        return None
    if node.type == "identifier" and p.type == "argument_list" and p.parent is not None:
        fn = text(p.parent.child_by_field_name("function"))
        if fn in _MEMBER_SLOT:
            return "macro", p.parent
    return None


def member_uses(
    source: bytes, tree: Tree, types: FileTypes, removed: dict[str, set[str]]
) -> list[Use]:
    """Uses of `removed` members (struct type -> member names) whose owner has that type."""
    names = set().union(*removed.values()) if removed else set()
    out: list[Use] = []
    seen: set[int] = set()

    def hit(owner: str, member: str, node: Node, how: str) -> None:
        if member in removed.get(owner, ()) and node.id not in seen:
            seen.add(node.id)
            out.append(Use(member, owner, node.start_point[0] + 1, how, node))

    for name in sorted(names):
        for occ in occurrences(source, tree.root_node, name):
            site = _member_site(occ)
            if site is None:
                continue
            what, n = site
            if what == "field":
                op = "->" if "->" in text(n.child_by_field_name("operator")) else "."
                hit(types.expr_type(n.child_by_field_name("argument")), name, n, f"{op}{name}")
            elif what == "designator":
                desig = n.children_by_field_name("designator")
                if desig and desig[0] == occ.parent and n.parent is not None:
                    hit(types.initializer_type(n.parent), name, n, f".{name} = (initializer)")
            elif what == "offsetof":
                hit(
                    types.resolve(type_arg(text(n.child_by_field_name("type")))),
                    name,
                    n,
                    "offsetof",
                )
            else:
                _macro_use(n, name, types, hit)
    return out


def _macro_use(
    call: Node, name: str, types: FileTypes, hit: Callable[[str, str, Node, str], None]
) -> None:
    fn = text(call.child_by_field_name("function"))
    args = split_args(text(call.child_by_field_name("arguments")))
    if fn in CONTAINER_MACROS and len(args) >= 3 and args[2] == name:
        hit(types.resolve(type_arg(args[1])), name, call, fn)
    elif fn in OFFSET_MACROS and len(args) >= 2 and args[1] == name:
        hit(types.resolve(type_arg(args[0])), name, call, fn)
    elif fn in ITER_MACROS and len(args) >= 2:
        member = args[2] if fn.endswith("_rcu") and len(args) >= 3 else args[-1]
        pos = call.child_by_field_name("arguments")
        first = pos.named_children[0] if pos is not None and pos.named_children else None
        if member == name and first is not None:
            hit(types.expr_type(first), name, call, fn)


def _declares(node: Node) -> bool:
    """The identifier is the name being declared, or a macro/#ifdef name, not a use."""
    p = node.parent
    if p is None:
        return False
    if p.type in (
        "preproc_def",
        "preproc_function_def",
        "preproc_ifdef",
        "preproc_defined",
        "preproc_elifdef",
        "preproc_params",
    ):
        return True
    if p.type in (
        "function_declarator",
        "init_declarator",
        "pointer_declarator",
        "array_declarator",
        "declaration",
        "parameter_declaration",
        "enumerator",
        "attributed_declarator",
        "parenthesized_declarator",
    ):
        return (
            p.child_by_field_name("declarator") == node
            or p.child_by_field_name("name") == node
            or p.type == "declaration"
        )
    if p.type == "argument_list" and p.parent is not None:
        fn = text(p.parent.child_by_field_name("function"))
        if fn in _MEMBER_SLOT and p.named_children and p.named_children[-1] == node:
            return True  # the member argument of container_of() and friends
    return False


def symbol_uses(source: bytes, tree: Tree, names: set[str]) -> list[Use]:
    """References to `names` as identifiers (calls, values, macro bodies), not comments."""
    out: list[Use] = []
    for name in sorted(names):
        for n in occurrences(source, tree.root_node, name):
            if n.type == "identifier" and not _declares(n):
                p = n.parent
                call = (
                    p is not None
                    and p.type == "call_expression"
                    and (p.child_by_field_name("function") == n)
                )
                site = p if call and p is not None else n
                out.append(
                    Use(name, "", n.start_point[0] + 1, "call" if call else "reference", site)
                )
            elif (
                n.type == "preproc_arg"
                and n.parent is not None
                and n.parent.type in ("preproc_def", "preproc_function_def")
            ):
                body = _STRINGS_COMMENTS.sub(" ", text(n))
                m = re.search(rf"\b{re.escape(name)}\b", body)
                if m:
                    line = n.start_point[0] + 1 + body[: m.start()].count("\n")
                    out.append(Use(name, "", line, "macro body", n))
    return _unique(out)


def _unique(uses: list[Use]) -> list[Use]:
    seen: set[tuple[str, int, int]] = set()
    out = []
    for u in uses:
        key = (u.name, u.line, u.node.id)
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out


def call_arg_count(call: Node) -> int:
    """Number of arguments of a call_expression."""
    args = call.child_by_field_name("arguments")
    if args is None:
        return 0
    return len([c for c in args.named_children if c.type != "comment"])
