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


def parse_rules(text: str) -> list[Rule]:
    """All `<name>-<cond> += …` assignments of a Kbuild Makefile."""
    rules = []
    for line in _join_continuations(text):
        m = _ASSIGN.match(line)
        if not m:
            continue
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
        rules.append(Rule(name, sym.group(1) if sym else None, cond == "m", targets))
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
        own = (r.symbol,) if r.symbol else ()
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
