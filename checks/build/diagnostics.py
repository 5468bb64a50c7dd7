"""Parse gcc/clang output into frozen diagnostic records (pure).

A record compares without its line and column: a warning that merely moved
is the same warning (see `Diagnostic.key`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.results import normalize_message

_DIAG = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)?\s+"
    r"(?P<sev>fatal error|error|warning|note):\s+(?P<msg>.*?)"
    r"(?:\s+\[(?P<opt>-W[^\]\s]+|-Werror[^\]\s]*)\])?\s*$"
)
_INCLUDED = re.compile(r"^(?:In file included from|\s+from)\s+(?P<file>[^:]+):(?P<line>\d+)[:,]")
_FUNCTION = re.compile(r"^(?P<file>[^:]+): (?:In function|In member function) '(?P<fn>[^']+)':$")
_OTHER_CONTEXT = re.compile(
    r"^(?P<file>[^:]+): (?:At top level|In static function|At global scope)"
)


@dataclass(frozen=True)
class Diagnostic:
    """One compiler diagnostic (warning or error), with where it was included from."""

    file: str
    line: int
    column: int | None
    severity: str  # "error" or "warning" ("fatal error" is folded into "error")
    message: str
    option: str = ""  # "-Wunused-but-set-variable"; for -Werror=foo the "-Wfoo" part
    function: str = ""
    include_chain: tuple[str, ...] = ()  # "include/linux/mm.h:12", "mm/a.c:20": as gcc
    # prints them, the direct includer first and the compiled .c file last
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity for baseline diffing: no line or column numbers."""
        return (self.file, self.severity, self.option, normalize_message(self.message))


def _option(raw: str | None) -> str:
    if not raw:
        return ""
    if raw.startswith("-Werror="):
        return "-W" + raw[len("-Werror=") :]
    return raw


def parse(output: str, path_map: Callable[[str], str] | None = None) -> list[Diagnostic]:
    """Parse compiler output into diagnostics, in order; notes attach to the one before.

    `path_map` turns the paths the compiler printed into tree-relative ones.
    Diagnostics in files outside the tree (system headers) keep their path.
    """
    fix = path_map or (lambda p: p)
    out: list[Diagnostic] = []
    chain: list[str] = []
    function = ""
    chain_open = False
    for raw in output.splitlines():
        line = raw.rstrip()
        m = _INCLUDED.match(line)
        if m:
            if not chain_open:
                chain = []
                chain_open = True
            chain.append(f"{fix(m['file'])}:{m['line']}")
            continue
        m2 = _FUNCTION.match(line)
        if m2:
            function = m2["fn"]
            continue
        if _OTHER_CONTEXT.match(line):
            function = ""
            continue
        m3 = _DIAG.match(line)
        if not m3:
            continue
        sev = m3["sev"]
        if sev == "note":
            if out:
                last = out[-1]
                out[-1] = Diagnostic(**{**last.__dict__, "notes": (*last.notes, m3["msg"])})
            chain_open = False
            continue
        out.append(
            Diagnostic(
                file=fix(m3["file"]),
                line=int(m3["line"]),
                column=int(m3["col"]) if m3["col"] else None,
                severity="error" if sev in ("error", "fatal error") else "warning",
                message=m3["msg"],
                option=_option(m3["opt"]),
                function=function,
                include_chain=tuple(chain) if chain_open else (),
            )
        )
        chain_open = False
    return out


class PathMap:
    """Maps compiler-printed paths (absolute, or relative to the O= dir) to tree paths."""

    def __init__(self, srcdir: str, objdir: str):
        self.srcdir = os.path.realpath(srcdir)
        self.objdir = os.path.realpath(objdir)

    def __call__(self, path: str) -> str:
        full = path if os.path.isabs(path) else os.path.join(self.objdir, path)
        full = os.path.normpath(full)
        for root in (self.srcdir, self.objdir):
            if full == root or full.startswith(root + os.sep):
                return os.path.relpath(full, root)
        return path
