"""Kbuild Makefiles → which object a source file builds and which Kconfig symbols gate it (pure).

`object_chain("mm/balloon_compaction.c", read)` follows
`obj-$(CONFIG_MEMORY_BALLOON) += balloon_compaction.o` in mm/Makefile, then
the directory's own `obj-$(CONFIG_…) += mm/` in the parent, up to the top, and
composites (`zsmalloc-y += …`, `foo-$(CONFIG_X) += bar.o`). `read` returns a
file of the tree or None; nothing here runs a process.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

Reader = Callable[[str], str | None]

_ASSIGN = re.compile(
    r"^\s*(?P<var>[\w.$(),-]+?(?:-\$\([^)]*\)|-[ymn]|-objs))\s*[:+]?=\s*(?P<val>.*)$"
)
_CONFIG = re.compile(r"CONFIG_(\w+)")
_KINDS = ("obj", "lib", "core", "drivers", "libs", "head", "extra", "always")


@dataclass(frozen=True)
class Rule:
    """One `<name>-<cond> += targets` assignment of a Makefile."""

    name: str  # "obj", "lib", or a composite object's stem ("zsmalloc")
    symbol: str | None  # CONFIG_ symbol without the prefix; None for -y / -objs
    module_only: bool  # `-m`
    targets: tuple[str, ...]
    gates: tuple[str, ...] = ()  # symbols of the `ifeq ($(CONFIG_X),y)` blocks around it


@dataclass(frozen=True)
class ObjectChain:
    """A source file's object and the symbols that must be on to build it, innermost first."""

    source: str
    object: str
    symbols: tuple[str, ...]
    found: bool  # False when no Makefile rule names the object (e.g. a #included .c file)


def _join_continuations(text: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for line in text.splitlines():
        line = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    if buf:
        out.append(buf)
    return out


_IF = re.compile(r"^\s*(ifeq|ifneq|ifdef|ifndef)\b\s*(.*)$")
_ELSE = re.compile(r"^\s*else\b")
_ENDIF = re.compile(r"^\s*endif\b")


def _if_symbol(kind: str, args: str) -> tuple[str, bool] | None:
    """(symbol, on) a Makefile conditional requires: `ifeq ($(CONFIG_X),y)`, `ifdef CONFIG_X`,
    `ifneq ($(CONFIG_X),)`; None when it tests no CONFIG_ symbol in a known way."""
    if kind in ("ifdef", "ifndef"):
        m = re.match(r"^CONFIG_(\w+)\s*$", args)
        return (m[1], kind == "ifdef") if m else None
    m = re.match(r"^\(\s*\$\(CONFIG_(\w+)\)\s*,\s*(\w*)\s*\)\s*$", args) or re.match(
        r"^['\"]\$\(CONFIG_(\w+)\)['\"]\s+['\"](\w*)['\"]\s*$", args
    )
    if not m:
        return None
    value_on = m[2] in ("y", "m")  # `= y` means on; `= ` (empty) means off
    if m[2] not in ("y", "m", ""):
        return None
    return m[1], value_on == (kind == "ifeq")


def parse_rules(text: str) -> list[Rule]:
    """All `<name>-<cond> += …` assignments of a Kbuild Makefile.

    An assignment inside `ifeq ($(CONFIG_X),y)` (or `ifdef CONFIG_X`, `ifneq
    ($(CONFIG_X),)`) is gated by X as well: its rule is repeated with X as
    its symbol when the assignment itself is unconditional, or X is added to
    the composite's chain through a rule of its own.
    """
    rules = []
    stack: list[tuple[str, bool] | None] = []
    for line in _join_continuations(text):
        if m := _IF.match(line):
            stack.append(_if_symbol(m[1], m[2].strip()))
            continue
        if _ELSE.match(line) and stack:
            top = stack[-1]
            stack[-1] = (top[0], not top[1]) if top else None
            continue
        if _ENDIF.match(line) and stack:
            stack.pop()
            continue
        m = _ASSIGN.match(line)
        if not m:
            continue
        gates = [g[0] for g in stack if g is not None and g[1]]
        var = m["var"]
        if var.endswith("-objs"):
            name, cond = var[: -len("-objs")], "y"
        elif "-$(" in var:
            name, cond = var.split("-$(", 1)
            cond = "$(" + cond
        else:
            name, cond = var.rsplit("-", 1)
        if cond == "n" or not name:
            continue
        sym = _CONFIG.search(cond)
        targets = tuple(t for t in m["val"].split() if not t.startswith("$("))
        own = sym.group(1) if sym else None
        rules.append(Rule(name, own, cond == "m", targets, tuple(g for g in gates if g != own)))
    return rules


def _makefile(directory: str, read: Reader) -> str | None:
    for name in ("Kbuild", "Makefile"):
        text = read(posixpath.join(directory, name) if directory else name)
        if text is not None:
            return text
    return None


def _gates(target: str, rules: list[Rule], depth: int = 0) -> tuple[bool, tuple[str, ...]]:
    """Whether `target` is named by a rule, and the symbols gating it (composites followed)."""
    for r in rules:
        if target not in r.targets:
            continue
        own = ((r.symbol,) if r.symbol else ()) + r.gates
        if r.name in _KINDS:
            return True, own
        if depth < 4:  # a composite: <name>.o is itself an object of this Makefile
            found, outer = _gates(r.name + ".o", rules, depth + 1)
            if found:
                return True, own + outer
        return True, own
    return False, ()


def object_of(source: str) -> str:
    """The object a source file compiles to (`mm/a.c` → `mm/a.o`)."""
    stem, _ = posixpath.splitext(source)
    return stem + ".o"


def object_chain(source: str, read: Reader) -> ObjectChain:
    """The object `source` builds and every symbol (innermost first) that gates it."""
    obj = object_of(source)
    directory = posixpath.dirname(obj)
    found, symbols = False, tuple[str, ...]()
    for _ in range(4):  # `i915-y += gem/i915_gem_shmem.o` names it from an ancestor
        text = _makefile(directory, read)
        if text is not None:
            found, symbols = _gates(posixpath.relpath(obj, directory or "."), parse_rules(text))
            if found:
                break
        if not directory:
            break
        directory = posixpath.dirname(directory)
    if not found:
        return ObjectChain(source, obj, (), False)
    chain: list[str] = list(symbols)
    child = directory
    while child:
        parent, name = posixpath.split(child)
        if parent == "arch" or not name:
            break
        ptext = _makefile(parent, read)
        if ptext is None:
            break
        pfound, psyms = _gates(name + "/", parse_rules(ptext))
        if not pfound and parent.startswith("arch/") and parent.count("/") == 1:
            break  # arch/<a>/Kbuild or Makefile reaches it through core-y/libs-y
        chain.extend(s for s in psyms if s not in chain)
        child = parent
    return ObjectChain(source, obj, tuple(chain), True)
