"""Preprocessor conditions around lines of C source (pure).

`conditions(text)` tells, for every line, which `#if` branches it sits in, as
Kconfig requirements: `#ifdef CONFIG_X` → X on, its `#else` → X off,
`#if IS_ENABLED(CONFIG_X) && !defined(CONFIG_Y)` → X on, Y off. Conditions
that are not a plain conjunction of such atoms still name their symbols, with
an unknown polarity (`on=None`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)$")
_ATOM = re.compile(
    r"^(?P<neg>!\s*)?(?:"
    r"(?:defined\s*\(?\s*CONFIG_(?P<a>\w+)\s*\)?)"
    r"|(?:(?:IS_ENABLED|IS_BUILTIN|IS_MODULE|IS_REACHABLE)\s*\(\s*CONFIG_(?P<b>\w+)\s*\))"
    r"|(?:CONFIG_(?P<c>\w+))"
    r")$"
)
_SYMBOL = re.compile(r"\bCONFIG_(\w+)")


@dataclass(frozen=True)
class Cond:
    """A Kconfig requirement: `symbol` must be on (y/m), off (n), or either (None)."""

    symbol: str
    on: bool | None
    # one side of an `A || B`: enough on its own, not required (a flip to try)
    alternative: bool = False

    def negated(self) -> Cond:
        return Cond(self.symbol, None if self.on is None else not self.on)


def _strip_comments(expr: str) -> str:
    expr = re.sub(r"/\*.*?\*/", " ", expr)
    expr = re.sub(r"/\*.*$", " ", expr)
    return expr.split("//", 1)[0].strip()


def _strip_parens(expr: str) -> str:
    while expr.startswith("(") and expr.endswith(")") and _balanced(expr[1:-1]):
        expr = expr[1:-1].strip()
    return expr


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def parse_condition(expr: str) -> tuple[tuple[Cond, ...], bool]:
    """Requirements of one `#if` expression, and whether they are exact.

    Exact means the expression is a conjunction of atoms, so its negation is
    known when it has one atom.
    """
    expr = _strip_parens(_strip_comments(expr))
    if "||" not in expr:
        parts = [_strip_parens(p.strip()) for p in expr.split("&&")]
        conds = []
        for p in parts:
            m = _ATOM.match(p)
            if not m:
                break
            sym = m["a"] or m["b"] or m["c"]
            conds.append(Cond(sym, not m["neg"]))
        else:
            return tuple(conds), True
    sides = [_strip_parens(p.strip()) for p in _split_top(expr, "||")]
    if len(sides) > 1:
        atoms = [_ATOM.match(p) for p in sides]
        if all(atoms):
            return tuple(
                Cond(m["a"] or m["b"] or m["c"], not m["neg"], alternative=True) for m in atoms if m
            ), False
    syms = dict.fromkeys(_SYMBOL.findall(expr))
    return tuple(Cond(s, None) for s in syms), False


def _split_top(expr: str, op: str) -> list[str]:
    """`expr` split at `op` outside parentheses."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(expr):
        ch = expr[i]
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and expr.startswith(op, i):
            out.append(expr[start:i])
            i += len(op)
            start = i
            continue
        i += 1
    out.append(expr[start:])
    return out


@dataclass
class _Frame:
    own: tuple[Cond, ...]  # the current branch's requirements
    exact: bool  # whether `own` is an exact conjunction
    previous: list[tuple[tuple[Cond, ...], bool]]  # earlier branches (conds, exact)


def _branch(frame: _Frame) -> tuple[Cond, ...]:
    """Requirements of the current branch, including 'not any earlier branch'."""
    out = list(frame.own)
    for conds, exact in frame.previous:
        if exact and len(conds) == 1:
            out.append(conds[0].negated())
        elif conds and all(c.alternative for c in conds):  # not (A || B): !A && !B
            out.extend(Cond(c.symbol, not c.on) for c in conds)
        else:
            out.extend(Cond(c.symbol, None) for c in conds)
    return tuple(out)


def conditions(text: str) -> list[tuple[Cond, ...]]:
    """For each line (index 0 = line 1), the Kconfig requirements of its `#if` nesting.

    Include guards and conditions without CONFIG_ symbols contribute nothing.
    """
    result: list[tuple[Cond, ...]] = []
    stack: list[_Frame] = []
    current: tuple[Cond, ...] = ()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        full = line
        while full.endswith("\\") and i + 1 < len(lines):
            result.append(current)
            i += 1
            full = full[:-1] + " " + lines[i]
        m = _DIRECTIVE.match(full)
        result.append(current)
        i += 1
        if not m:
            continue
        kind, rest = m[1], m[2]
        if kind in ("if", "ifdef", "ifndef"):
            if kind == "ifdef":
                conds, exact = parse_condition(f"defined({rest.strip()})")
            elif kind == "ifndef":
                conds, exact = parse_condition(f"!defined({rest.strip()})")
            else:
                conds, exact = parse_condition(rest)
            stack.append(_Frame(conds, exact, []))
        elif kind in ("elif", "else") and stack:
            top = stack[-1]
            top.previous.append((top.own, top.exact))
            top.own, top.exact = parse_condition(rest) if kind == "elif" else ((), True)
        elif kind == "endif" and stack:
            stack.pop()
        current = tuple(c for f in stack for c in _branch(f))
    return result


def conditions_at(text: str, line: int) -> tuple[Cond, ...]:
    """Requirements around one 1-based line."""
    conds = conditions(text)
    return conds[line - 1] if 0 < line <= len(conds) else ()
