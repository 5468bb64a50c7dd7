"""What one patch affects: objects to build, Kconfig symbols to flip, arches (pure planning).

The tree is read through a small `Tree` protocol (read a file, grep), so the
planning runs against a fake in unit tests and against `git grep` at the
patch's commit in the check.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.diff import FileDiff, parse_diff
from checks.build.cond import Cond, conditions
from checks.build.kbuild import ObjectChain, object_chain

_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_C_WORDS = frozenset(
    (
        "auto",
        "break",
        "case",
        "char",
        "const",
        "continue",
        "default",
        "do",
        "double",
        "else",
        "enum",
        "extern",
        "float",
        "for",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "register",
        "restrict",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "struct",
        "switch",
        "typedef",
        "union",
        "unsigned",
        "void",
        "volatile",
        "while",
        "bool",
        "true",
        "false",
        "NULL",
        "typeof",
        "__typeof__",
        "defined",
        "include",
        "define",
        "ifdef",
        "ifndef",
        "endif",
        "elif",
        "undef",
        "likely",
        "unlikely",
        "u8",
        "u16",
        "u32",
        "u64",
        "s8",
        "s16",
        "s32",
        "s64",
        "size_t",
        "ssize_t",
        "loff_t",
        "gfp_t",
        "__user",
        "__iomem",
        "__init",
        "__exit",
        "__always_inline",
        "noinline",
        "IS_ENABLED",
        "IS_BUILTIN",
        "IS_MODULE",
        "WARN_ON",
        "WARN_ON_ONCE",
        "BUG_ON",
        "pr_err",
        "pr_info",
        "pr_warn",
        "pr_debug",
        "EXPORT_SYMBOL",
        "EXPORT_SYMBOL_GPL",
        "min",
        "max",
        "unsigned",
    )
)
SOURCE_SUFFIXES = (".c", ".S")


class Tree(Protocol):
    """Read access to the tree at one revision."""

    def read(self, path: str) -> str | None: ...

    def grep(
        self,
        patterns: Sequence[str],
        paths: Sequence[str],
        *,
        word: bool = False,
        fixed: bool = False,
        files_only: bool = False,
    ) -> list[tuple[str, int, str]]:
        """git grep -E (or -F): (path, line, text) hits; line 0 with files_only."""
        ...


@dataclass(frozen=True)
class Flip:
    """A symbol value worth building, and why. Lower `priority` is built first."""

    symbol: str
    value: str  # "y" or "n"
    priority: int  # 0: declaration only under a condition; 1: changed lines; 2: header users
    reason: str


@dataclass(frozen=True)
class Impact:
    """What a patch affects."""

    objects: tuple[ObjectChain, ...] = ()
    w1_objects: frozenset[str] = frozenset()  # objects of .c files the patch changes
    flips: tuple[Flip, ...] = ()
    srcarches: tuple[str, ...] = ()  # arch/<a>/ dirs touched; empty = no arch restriction
    notes: tuple[str, ...] = field(default=(), compare=False)


def _code(text: str) -> str:
    """A line without string literals and comments (roughly)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"/\*.*?\*/", " ", text)
    return text.split("//", 1)[0]


def called_identifiers(lines: Iterable[str]) -> list[str]:
    """Names called (`name(`) by the lines, keywords and common macros left out, in order."""
    out: dict[str, None] = {}
    for line in lines:
        if line.lstrip().startswith(("#", "*", "/*")):
            continue
        for name in _CALL.findall(_code(line)):
            if name not in _C_WORDS and not name.isupper():
                out[name] = None
    return list(out)


def changed_identifiers(change: FileDiff, new_text: str) -> list[str]:
    """Names a header change removes or redefines: removed ones gone from the new text,
    plus names on both added and removed lines."""
    old_code = {" ".join(_code(t).split()) for _, t in change.removed}
    new_code = {" ".join(_code(t).split()) for _, t in change.added}
    # lines whose code is unchanged (a comment or whitespace edit) change no name
    removed = {n for t in old_code - new_code for n in _IDENT.findall(t)}
    added = {n for t in new_code - old_code for n in _IDENT.findall(t)}
    present = set(_IDENT.findall(new_text))
    names = (removed - present) | (removed & added)
    return sorted(n for n in names if n not in _C_WORDS and len(n) > 3)


def include_name(header: str) -> str | None:
    """`include/linux/mm.h` → `linux/mm.h`; `arch/x86/include/asm/a.h` → `asm/a.h`."""
    if header.startswith("include/"):
        return header[len("include/") :]
    m = re.match(r"arch/[^/]+/include/(.+)$", header)
    return m[1] if m else None


def _decl_pattern(names: Sequence[str]) -> str:
    alt = "|".join(re.escape(n) for n in names)
    # a prototype or definition starting at column 0, or a function-like #define
    return rf"^([A-Za-z_][A-Za-z0-9_ \t*,()]*[ \t*]({alt})[ \t]*\(|#[ \t]*define[ \t]+({alt})\b)"


def declaration_flips(tree: Tree, names: Sequence[str], search: Sequence[str]) -> list[Flip]:
    """For names declared only under `#if CONFIG_X` (no stub in another branch): X=n.

    A call to such a function compiles only when X is on; building with X off
    shows the missing declaration (the CONFIG_MIGRATION class of bugs).
    """
    if not names:
        return []
    # a fixed-string word grep finds the lines; the declaration shape is checked here
    # (git grep -E with that pattern backtracks over every header line: 7 s vs 0.3 s)
    decl = re.compile(_decl_pattern(names))
    hits = [h for h in tree.grep(names, search, word=True, fixed=True) if decl.search(h[2])]
    sites: dict[str, list[tuple[Cond, ...]]] = {}
    cache: dict[str, list[tuple[Cond, ...]]] = {}
    for path, line, text in hits:
        name = next((n for n in names if re.search(rf"\b{re.escape(n)}\b", text)), None)
        if name is None:
            continue
        if path not in cache:
            cache[path] = conditions(tree.read(path) or "")
        conds = cache[path][line - 1] if line <= len(cache[path]) else ()
        sites.setdefault(name, []).append(conds)
    flips: list[Flip] = []
    for name, all_conds in sites.items():
        if any(not c for c in all_conds):
            continue  # declared unconditionally somewhere
        required = set.intersection(
            *({c for c in cs if c.on and not c.alternative} for cs in all_conds)
        )
        stubbed = {c.symbol for cs in all_conds for c in cs if c.on is False and not c.alternative}
        for c in sorted(required, key=lambda c: c.symbol):
            if c.symbol not in stubbed:
                flips.append(
                    Flip(
                        c.symbol, "n", 0, f"{name}() is declared only when CONFIG_{c.symbol} is set"
                    )
                )
    return flips


def _want(conds: Iterable[Cond], priority: int, reason: str) -> list[Flip]:
    return [
        Flip(c.symbol, "y" if c.on else "n", priority, reason) for c in conds if c.on is not None
    ]


def line_flips(path: str, text: str, lines: Iterable[int], priority: int) -> list[Flip]:
    """Values that make the given lines of a file compile (from their #if nesting)."""
    table = conditions(text)
    out: dict[Flip, None] = {}
    for n in lines:
        if 0 < n <= len(table):
            for f in _want(table[n - 1], priority, f"{path}:{n} is built only then"):
                out.setdefault(f, None)
    return list(out)


def best_flips(flips: Iterable[Flip]) -> tuple[Flip, ...]:
    """Each (symbol, value) once, with its best priority, best first."""
    best: dict[tuple[str, str], Flip] = {}
    for f in flips:
        k = (f.symbol, f.value)
        if k not in best or f.priority < best[k].priority:
            best[k] = f
    return tuple(sorted(best.values(), key=lambda f: (f.priority, f.symbol, f.value)))


def analyze(diff: str, tree: Tree, max_header_objects: int) -> Impact:
    """Objects, flips and arches a patch (its diff, the tree after it) affects."""
    changes = parse_diff(diff)
    objects: dict[str, ObjectChain] = {}
    w1: set[str] = set()
    flips: list[Flip] = []
    srcarches: set[str] = set()
    notes: list[str] = []
    header_users: list[str] = []
    for ch in changes:
        if m := re.match(r"arch/([^/]+)/", ch.path):
            srcarches.add(m[1])
        if ch.deleted or not ch.path.endswith((".c", ".h", ".S")):
            continue
        text = tree.read(ch.path) or ""
        hunk_lines = [n for h in ch.hunks for n in h.new_lines]
        flips += line_flips(ch.path, text, hunk_lines, 1)
        if ch.path.endswith(SOURCE_SUFFIXES):
            chain = object_chain(ch.path, tree.read)
            if chain.found:
                objects[chain.object] = chain
                w1.add(chain.object)
            else:
                notes.append(f"{ch.path}: no Makefile rule builds it; not built")
        # calls the patch adds (in a .c file or a header's inline code)
        directory = posixpath.dirname(ch.path)
        search = ["include/*.h", "arch/*/include/*.h", f"{directory}/*.h"]
        names = called_identifiers(t for _, t in ch.added)[:40]
        flips += declaration_flips(tree, names, search)
        if not ch.path.endswith(SOURCE_SUFFIXES):
            users, user_flips = _header_users(tree, ch, text, changes, max_header_objects)
            header_users += [u for u in users if u not in header_users]
            flips += user_flips
    for path in header_users[:max_header_objects]:
        chain = object_chain(path, tree.read)
        if chain.found and chain.object not in objects:
            objects[chain.object] = chain
    if len(header_users) > max_header_objects:
        notes.append(
            f"{len(header_users)} files use changed header names; built {max_header_objects}"
        )
    return Impact(
        tuple(objects.values()),
        frozenset(w1),
        best_flips(flips),
        tuple(sorted(srcarches)),
        tuple(notes),
    )


_DECL = re.compile(
    r"^(?:#\s*define\s+(?P<macro>\w+)"
    r"|(?:typedef\s+)?(?:struct|union|enum)\s+(?P<tag>\w+)\s*\{?\s*$"
    r"|[A-Za-z_][\w \t*]*?\b(?P<func>\w+)\s*\()"
)


def enclosing_names(text: str, lines: Iterable[int]) -> list[str]:
    """Names of the declarations around the given lines (the function, struct or macro a
    changed line sits in), for changes that rename nothing (a comment, a body)."""
    src = text.splitlines()
    out: dict[str, None] = {}
    for n in lines:
        for i in range(min(n, len(src)) - 1, max(-1, n - 200), -1):
            m = _DECL.match(src[i])
            if m:
                name = m["macro"] or m["tag"] or m["func"]
                if name and name not in _C_WORDS and not name.startswith("_LINUX_"):
                    out.setdefault(name, None)
                break
            if i < n - 1 and src[i].startswith("}"):
                break  # the line is after a closed block, at file scope
    return list(out)


def _header_users(
    tree: Tree, ch: FileDiff, text: str, changes: Sequence[FileDiff], limit: int
) -> tuple[list[str], list[Flip]]:
    """Source files that use what a changed header changes (ranked), and the values that
    compile those uses (for the first `limit` files).

    Users are found through the names the hunks change (or, for a change that
    renames nothing, the declarations around it): among the files that include
    the header, then tree-wide with git grep for names no includer uses. The
    ranking is a greedy cover, so that the first files use every name once.
    """
    hunk_lines = [n for n, _ in ch.added] or [n for h in ch.hunks for n in h.new_lines]
    names = changed_identifiers(ch, text) or enclosing_names(text, hunk_lines)
    inc = include_name(ch.path)
    directory = posixpath.dirname(ch.path)
    if inc:
        includers = {p for p, _, _ in tree.grep([f"<{inc}>"], ["*.c"], fixed=True, files_only=True)}
    else:  # a local header: its own directory
        base = posixpath.basename(ch.path)
        includers = {
            p
            for p, _, _ in tree.grep(
                [f'"{base}"'], [f"{directory}/*.c"], fixed=True, files_only=True
            )
        }
    by_file: dict[str, list[int]] = {}
    if names and includers:
        by_file = _specific_uses(names[:30], tree.grep(names[:30], sorted(includers), word=True))
    used = {n for path in by_file for n in _names_on(tree, path, by_file[path], names)}
    unused = [n for n in names[:30] if n not in used and len(n) > 5]
    if unused:  # names reached through other headers: grep the tree, bounded
        wide = tree.grep(unused[:10], ["*.c"], word=True)
        for path, lines in _specific_uses(unused[:10], wide, generic=20).items():
            if path not in by_file:
                by_file[path] = lines
    if not by_file:  # nothing names it: any file that includes it compiles its lines
        by_file = {p: [] for p in sorted(includers)}
    changed_dirs = {posixpath.dirname(c.path) for c in changes}
    ranked = _cover_order(
        by_file,
        {p: set(_names_on(tree, p, by_file[p], names)) for p in by_file},
        changed_dirs,
    )
    flips = [
        f
        for path in ranked[:limit]
        for f in line_flips(path, tree.read(path) or "", by_file[path], 2)
    ]
    return ranked, flips


def _names_on(tree: Tree, path: str, lines: Sequence[int], names: Sequence[str]) -> list[str]:
    """Which of `names` the given lines of a file use."""
    src = (tree.read(path) or "").splitlines()
    text = " ".join(src[n - 1] for n in lines if 0 < n <= len(src))
    return [n for n in names if re.search(rf"\b{re.escape(n)}\b", text)]


def _cover_order(
    by_file: dict[str, list[int]], names_of: dict[str, set[str]], changed_dirs: set[str]
) -> list[str]:
    """Files in an order where each next one adds the most names not yet used (files in
    the series' own directories first on ties), then the rest by their number of uses."""
    left = dict(names_of)
    done: set[str] = set()
    order: list[str] = []
    while left:
        best = min(
            left,
            key=lambda p: (
                -len(left[p] - done),
                posixpath.dirname(p) not in changed_dirs,
                -len(by_file[p]),
                p,
            ),
        )
        if not left[best] - done:
            break
        order.append(best)
        done |= left.pop(best)
    rest = sorted(
        left, key=lambda p: (posixpath.dirname(p) not in changed_dirs, -len(by_file[p]), p)
    )
    return order + rest


def _specific_uses(
    names: Sequence[str], uses: Sequence[tuple[str, int, str]], generic: int = 40
) -> dict[str, list[int]]:
    """Lines per file that use the names, leaving out names used so widely (`mode`,
    a parameter's name) that they say nothing, unless nothing else is left."""
    per_name: dict[str, list[tuple[str, int]]] = {}
    for path, line, text in uses:
        for n in names:
            if re.search(rf"\b{re.escape(n)}\b", text):
                per_name.setdefault(n, []).append((path, line))
    specific = {n: hits for n, hits in per_name.items() if len(hits) <= generic} or per_name
    by_file: dict[str, list[int]] = {}
    for hits in specific.values():
        for path, line in hits:
            if line not in by_file.setdefault(path, []):
                by_file[path].append(line)
    return by_file
