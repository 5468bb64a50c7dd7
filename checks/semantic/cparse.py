"""tree-sitter-c helpers: parsing, names, types and the definitions a file makes.

tree-sitter parses one file without the preprocessor, so macros produce ERROR
nodes here and there; everything below is tolerant of them and only reads the
shapes it recognises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Tree

_SPACES = re.compile(r"\s+")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_PREPROC_BLOCKS = {"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"}
_DECLARATOR_WRAPPERS = {
    "pointer_declarator",
    "array_declarator",
    "init_declarator",
    "attributed_declarator",
    "parenthesized_declarator",
    "function_declarator",
}


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_c.language()))


def parse(source: bytes) -> Tree:
    """Parse C source (one file, no preprocessing)."""
    return _parser().parse(source)


def text(node: Node | None) -> str:
    """The source text of a node ("" for None)."""
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def squash(s: str) -> str:
    """Text without comments and with runs of white space made one space."""
    return _SPACES.sub(" ", _COMMENT.sub(" ", s)).strip()


def walk(node: Node) -> Iterator[Node]:
    """Every node under `node` (itself included), depth first, in source order."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def walk_outside_bodies(node: Node) -> Iterator[Node]:
    """Like walk(), but without descending into function bodies (where most nodes are)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if (
            n.type == "compound_statement"
            and n.parent is not None
            and (n.parent.type == "function_definition")
        ):
            continue
        stack.extend(reversed(n.children))


def occurrences(source: bytes, root: Node, word: str) -> Iterator[Node]:
    """The smallest node at each occurrence of `word` (as a whole word) in the source."""
    for m in re.finditer(rb"\b" + re.escape(word.encode()) + rb"\b", source):
        node = root.descendant_for_byte_range(m.start(), m.end())
        if node is not None:
            yield node


def type_name(node: Node | None) -> str:
    """'struct S', 'union U', 'enum E', a typedef name or a primitive type; '' if unknown."""
    if node is None:
        return ""
    if node.type == "type_descriptor":
        return type_name(node.child_by_field_name("type"))
    if node.type in ("struct_specifier", "union_specifier", "enum_specifier"):
        name = node.child_by_field_name("name")
        return f"{node.type.split('_')[0]} {text(name)}" if name else ""
    if node.type in ("type_identifier", "primitive_type", "sized_type_specifier"):
        return text(node)
    return ""


def declarator_name(node: Node | None) -> Node | None:
    """The identifier a declarator declares (through pointers, arrays, parentheses)."""
    while node is not None:
        if node.type in ("identifier", "field_identifier", "type_identifier"):
            return node
        if node.type not in _DECLARATOR_WRAPPERS:
            return None
        node = _inner(node)
    return None


def _inner(node: Node) -> Node | None:
    inner = node.child_by_field_name("declarator")
    if inner is None and node.named_children:
        inner = node.named_children[0]
    return inner


def is_function_declarator(node: Node | None) -> bool:
    """A declarator that declares a function (not a pointer to one)."""
    while node is not None and node.type in ("attributed_declarator", "parenthesized_declarator"):
        node = node.named_children[0] if node.named_children else None
    if node is None:
        return False
    if node.type == "function_declarator":
        inner = node.child_by_field_name("declarator")
        return inner is not None and inner.type in ("identifier", "attributed_declarator")
    if node.type == "pointer_declarator":
        return is_function_declarator(node.child_by_field_name("declarator"))
    return False


def has_function_pointer(node: Node | None) -> bool:
    """A declarator with a function pointer in it (`(*cb)(...)`)."""
    return (
        node is not None
        and any(n.type == "function_declarator" for n in walk(node))
        and not is_function_declarator(node)
    )


def guards(node: Node) -> tuple[str, ...]:
    """The preprocessor conditions around a node, outermost first ('!X' in #else)."""
    out: list[str] = []
    child = node
    parent = node.parent
    while parent is not None:
        if parent.type in ("preproc_ifdef", "preproc_if", "preproc_elif", "preproc_elifdef"):
            cond = _condition(parent)
            alt = parent.child_by_field_name("alternative")
            in_alt = alt is not None and child.start_byte >= alt.start_byte
            if not in_alt:
                out.append(cond)
            elif parent.type == "preproc_ifdef" or parent.type == "preproc_if":
                out.append(f"!({cond})" if " " in cond else f"!{cond}")
        child = parent
        parent = parent.parent
    return tuple(reversed(out))


def _condition(node: Node) -> str:
    if node.type in ("preproc_ifdef", "preproc_elifdef"):
        name = text(node.child_by_field_name("name"))
        neg = text(node.children[0]).strip() in ("#ifndef", "#elifndef")
        return f"!{name}" if neg else name
    return squash(text(node.child_by_field_name("condition")))


def guard_text(g: tuple[str, ...]) -> str:
    """Guards as the reader expects them: '#if CONFIG_A && !CONFIG_B'."""
    return " && ".join(g)


@dataclass(frozen=True)
class Member:
    """One member of a struct or union definition."""

    name: str
    type: str  # type_name() of the member, '' if unknown
    function_pointer: bool
    line: int  # 1-based


@dataclass(frozen=True)
class Signature:
    """A function's declared interface, parameter names stripped."""

    name: str
    ret: str
    params: tuple[str, ...]
    variadic: bool
    definition: bool  # a body, not just a prototype
    line: int
    guards: tuple[str, ...]
    static: bool = False  # file-local: other files may have their own

    @property
    def shape(self) -> tuple[str, tuple[str, ...], bool]:
        return (self.ret, self.params, self.variadic)

    def render(self) -> str:
        args = list(self.params) + (["..."] if self.variadic else [])
        return f"{self.ret} {self.name}({', '.join(args) or 'void'})"


@dataclass
class FileDefs:
    """What one file defines at file scope."""

    structs: dict[str, dict[str, Member]] = field(default_factory=dict)
    struct_lines: dict[str, int] = field(default_factory=dict)
    typedefs: dict[str, str] = field(default_factory=dict)  # name -> type_name
    functions: dict[str, list[Signature]] = field(default_factory=dict)
    macros: dict[str, int] = field(default_factory=dict)  # name -> line
    globals: dict[str, str] = field(default_factory=dict)  # name -> type_name
    global_lines: dict[str, int] = field(default_factory=dict)
    enumerators: dict[str, int] = field(default_factory=dict)

    def symbols(self) -> dict[str, tuple[str, int]]:
        """name -> (what, line) of every function, macro, global and enum constant."""
        out: dict[str, tuple[str, int]] = {}
        for name, sigs in self.functions.items():
            static = all(s.static for s in sigs)
            out[name] = ("static function" if static else "function", sigs[0].line)
        for name, line in self.macros.items():
            out[name] = ("macro", line)
        for name, line in self.global_lines.items():
            out[name] = ("variable", line)
        for name, line in self.enumerators.items():
            out[name] = ("enum constant", line)
        return out


def _members(body: Node, into: dict[str, Member]) -> None:
    for fd in body.named_children:
        if fd.type in _PREPROC_BLOCKS:  # members under #ifdef inside the struct
            _members(fd, into)
            continue
        if fd.type != "field_declaration":
            continue
        tnode = fd.child_by_field_name("type")
        declarators = fd.children_by_field_name("declarator")
        if (
            not declarators
            and tnode is not None
            and tnode.type in ("struct_specifier", "union_specifier")
        ):
            inner = tnode.child_by_field_name("body")
            if inner is not None:  # anonymous struct/union: members belong to the parent
                _members(inner, into)
            continue
        for d in declarators:
            name = declarator_name(d)
            if name is not None:
                into[text(name)] = Member(
                    text(name), type_name(tnode), has_function_pointer(d), name.start_point[0] + 1
                )


def param_types(plist: Node | None) -> tuple[tuple[str, ...], bool]:
    """Normalised parameter types of a parameter_list, and whether it ends in '...'."""
    if plist is None:
        return (), False
    params: list[str] = []
    variadic = False
    for p in plist.named_children:
        if p.type == "variadic_parameter":
            variadic = True
            continue
        if p.type != "parameter_declaration":
            continue
        s = text(p)
        name = declarator_name(p.child_by_field_name("declarator"))
        if name is not None:
            off = name.start_byte - p.start_byte
            raw = p.text or b""
            s = (raw[:off] + raw[off + len(name.text or b"") :]).decode("utf-8", "replace")
        params.append(squash(s).replace(" *", "*").replace("* ", "*"))
    if params == ["void"]:
        params = []
    return tuple(params), variadic


def _signature(decl: Node, declarator: Node, definition: bool) -> Signature | None:
    ret = type_name(decl.child_by_field_name("type")) or text(decl.child_by_field_name("type"))
    node: Node | None = declarator
    stars = 0
    while node is not None and node.type != "function_declarator":
        if node.type == "pointer_declarator":
            stars += 1
        node = _inner(node)
    if node is None:
        return None
    name = declarator_name(node)
    if name is None:
        return None
    params, variadic = param_types(node.child_by_field_name("parameters"))
    static = any(c.type == "storage_class_specifier" and text(c) == "static" for c in decl.children)
    return Signature(
        text(name),
        squash(ret) + "*" * stars,
        params,
        variadic,
        definition,
        name.start_point[0] + 1,
        guards(decl),
        static,
    )


def _top_level(root: Node) -> Iterator[Node]:
    stack = list(reversed(root.named_children))
    while stack:
        n = stack.pop()
        if n.type in _PREPROC_BLOCKS or n.type == "linkage_specification":
            stack.extend(reversed(n.named_children))
        else:
            yield n


def file_defs(tree: Tree) -> FileDefs:
    """Structs, typedefs, functions, macros, globals and enum constants of one file."""
    defs = FileDefs()
    for n in walk_outside_bodies(tree.root_node):
        if n.type in ("struct_specifier", "union_specifier"):
            body = n.child_by_field_name("body")
            tname = type_name(n)
            if body is not None and tname:
                _members(body, defs.structs.setdefault(tname, {}))
                defs.struct_lines[tname] = n.start_point[0] + 1
        elif n.type == "enumerator":
            name = n.child_by_field_name("name")
            if name is not None:
                defs.enumerators[text(name)] = name.start_point[0] + 1
    for n in _top_level(tree.root_node):
        if n.type in ("preproc_def", "preproc_function_def"):
            name = n.child_by_field_name("name")
            if name is not None:
                defs.macros.setdefault(text(name), name.start_point[0] + 1)
        elif n.type == "function_definition":
            d = n.child_by_field_name("declarator")
            sig = _signature(n, d, True) if d is not None else None
            if sig is not None:
                defs.functions.setdefault(sig.name, []).append(sig)
        elif n.type == "type_definition":
            t = type_name(n.child_by_field_name("type"))
            for d in n.children_by_field_name("declarator"):
                name = declarator_name(d)
                if name is not None and t:
                    defs.typedefs[text(name)] = t
        elif n.type == "declaration":
            t = type_name(n.child_by_field_name("type"))
            for d in n.children_by_field_name("declarator"):
                if is_function_declarator(d):
                    sig = _signature(n, d, False)
                    if sig is not None:
                        defs.functions.setdefault(sig.name, []).append(sig)
                    continue
                name = declarator_name(d)
                if name is not None:
                    defs.globals[text(name)] = t
                    defs.global_lines.setdefault(text(name), name.start_point[0] + 1)
    return defs
