"""Patch coverage: which changed lines of .c and .h files some built variant compiled (pure).

The truth comes from the preprocessor. For every object a variant built, its
exact compile command is re-run with `-E -C -dD` (`preprocess.py`); the line
markers of that output say which lines of which file the compiler saw. A line
of code, a comment (`-C`) or a `#define` (`-dD`) in an active `#if` branch
always leaves text at its line; an `#include` leaves a marker. A branch of
`#if … #elif … #else … #endif` is active when any line in it (or in a branch
nested in it) left something, and every line of an active branch was
compiled, blank lines and directives included. A header line counts when some
compiled object included the header with the line's branch active.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.diff import parse_diff

_DIRECTIVE = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|elifdef|elifndef|else|endif)\b")
_MARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"((?: \d+)*)\s*$')
_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
COVERED_SUFFIXES = (".c", ".h")


class Reason(StrEnum):
    """Why a changed line was compiled in no variant."""

    UNSATISFIABLE = "symbol unsatisfiable"  # no config built had its #if or object on
    ARCH = "arch not built"  # it belongs to an arch no variant was built for
    NO_USER = "no user compiled"  # a header (or #included file) no built object included
    BUDGET = "budget"  # a variant that would have compiled it was dropped for the budget
    BUILD_ERROR = "build error"  # the series' own compile error in the file stops the compiler


def changed_lines(diff: str) -> dict[str, list[int]]:
    """New-side numbers of the lines a diff adds to .c and .h files, by path."""
    out: dict[str, list[int]] = {}
    for ch in parse_diff(diff):
        if ch.deleted or not ch.path.endswith(COVERED_SUFFIXES) or not ch.added:
            continue
        out[ch.path] = sorted({n for n, _ in ch.added})
    return out


def _code_line(line: str, in_comment: bool) -> tuple[str, bool]:
    """The line without comments and literals, and whether a /* comment goes on after it."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if in_comment:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i = end + 2
            in_comment = False
            out.append(" ")
            continue
        m = _LITERAL.match(line, i)
        if m:
            out.append('""')
            i = m.end()
            continue
        if line.startswith("/*", i):
            in_comment = True
            i += 2
            continue
        if line.startswith("//", i):
            break
        out.append(line[i])
        i += 1
    return "".join(out), in_comment


@dataclass(frozen=True)
class Blocks:
    """The `#if` structure of a file: each line's branch, and each branch's parent."""

    of_line: tuple[int, ...]  # index 0 = line 1; branch 0 is the file outside any #if
    parent: tuple[int, ...]  # parent[b] for b >= 1; parent[0] == -1

    def line(self, n: int) -> int:
        return self.of_line[n - 1] if 0 < n <= len(self.of_line) else 0


def blocks(text: str) -> Blocks:
    """Branches of the file's conditional directives, without evaluating them.

    A directive line belongs to the branch around its `#if` (it is read whenever
    that branch is); the lines after it, up to the next directive of the same
    level, are a branch of their own.
    """
    of_line: list[int] = []
    parent = [-1]
    stack = [0]
    in_comment = False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start_in_comment = in_comment
        logical = lines[i]
        count = 1
        while logical.endswith("\\") and i + count < len(lines):
            logical = logical[:-1] + lines[i + count]
            count += 1
        code, in_comment = _code_line(logical, in_comment)
        m = None if start_in_comment else _DIRECTIVE.match(code)
        kind = m[1] if m else ""
        if kind in ("if", "ifdef", "ifndef"):
            own = stack[-1]
            parent.append(own)
            stack.append(len(parent) - 1)
        elif kind in ("elif", "elifdef", "elifndef", "else") and len(stack) > 1:
            own = stack[-2]
            parent.append(own)
            stack[-1] = len(parent) - 1
        elif kind == "endif" and len(stack) > 1:
            own = stack[-2]
            stack.pop()
        else:
            own = stack[-1]
        of_line += [own] * count
        i += count
    return Blocks(tuple(of_line), tuple(parent))


def seen_lines(preprocessed: str, path_of: Callable[[str], str | None]) -> dict[str, set[int]]:
    """Lines of each file that left text (or an #include) in `-E -C -dD` output.

    `path_of` maps a marker's file name to a tree path (None: not of the tree);
    every tree file named by a marker is in the result, even with no line seen.
    """
    out: dict[str, set[int]] = {}
    paths: dict[str, str | None] = {}
    current: set[int] | None = None
    line = 0
    for text in preprocessed.splitlines():
        if text.startswith("# ") and (m := _MARKER.match(text)):
            name = m[2].replace('\\"', '"').replace("\\\\", "\\")
            if name not in paths:
                paths[name] = path_of(name)
            path = paths[name]
            flags = m[3].split()
            if path is None:
                current = None
            else:
                current = out.setdefault(path, set())
                if "2" in flags and int(m[1]) > 1:
                    current.add(int(m[1]) - 1)  # back from an #include on the line before
            line = int(m[1])
            continue
        if current is not None and text.strip():
            current.add(line)
        line += 1
    return out


def active_lines(text: str, seen: Iterable[int]) -> set[int]:
    """Lines of a file compiled, given the lines the preprocessor showed of it."""
    b = blocks(text)
    active = {0}
    for n in seen:
        blk = b.line(n)
        while blk > 0 and blk not in active:
            active.add(blk)
            blk = b.parent[blk]
    return {n for n in range(1, len(b.of_line) + 1) if b.of_line[n - 1] in active}


def tree_path(name: str, worktree: str, odir: str) -> str | None:
    """A marker's file name as a path in the tree, or None (generated, system, built-in)."""
    if name.startswith("<"):
        return None
    full = name if posixpath.isabs(name) else posixpath.join(odir, name)
    full = posixpath.normpath(full)
    root = posixpath.normpath(worktree)
    if not full.startswith(root + "/"):
        return None
    return full[len(root) + 1 :]


@dataclass
class Tally:
    """Changed lines compiled so far, over the variants measured."""

    changed: dict[str, list[int]]
    covered: dict[str, set[int]] = field(default_factory=dict)
    included: set[str] = field(default_factory=set)  # changed files some built object read

    def add(self, path: str, text: str, seen: Iterable[int]) -> None:
        """One preprocessed view of a changed file (the file's text as compiled)."""
        if path not in self.changed:
            return
        self.included.add(path)
        active = active_lines(text, seen)
        self.covered.setdefault(path, set()).update(n for n in self.changed[path] if n in active)

    def missing(self, path: str) -> list[int]:
        done = self.covered.get(path, set())
        return [n for n in self.changed.get(path, []) if n not in done]

    @property
    def complete(self) -> bool:
        return not any(self.missing(p) for p in self.changed)


@dataclass(frozen=True)
class Uncovered:
    file: str
    lines: tuple[int, ...]
    reason: Reason


def reason_for(
    path: str,
    *,
    built_srcarches: Sequence[str],
    included: bool,
    dropped_for_budget: bool,
    own_object: bool,
    broken: bool = False,
) -> Reason:
    """Why a changed file's lines were not compiled (the first reason that applies);
    `broken`: the series leaves a compile error in the file (a finding)."""
    if (m := re.match(r"arch/([^/]+)/", path)) and m[1] not in built_srcarches:
        return Reason.ARCH
    if broken:
        return Reason.BUILD_ERROR
    if dropped_for_budget:
        return Reason.BUDGET
    if not included and not own_object:
        return Reason.NO_USER
    return Reason.UNSATISFIABLE
