"""A small Kconfig solver on kconfiglib: from a base .config, make requests hold, changing little.

"Enable these symbols, force that one to n" is a search over the Kconfig
expressions: `depends on` must become true, `select`s that force a symbol on
must become false, a symbol with no prompt is reached through its `default`
conditions or one of its selectors; `||` tries each side in turn, undoing what
a failed side set. The symbols it sets are handed back to be applied with the
kernel's own scripts/config and `make olddefconfig`, which stay the judge.

It runs as a script in the build sandbox (it evaluates the tree's Kconfig,
whose `$(shell,…)` runs the compiler): standard library, kconfiglib and
`kmodel` (the per-base model cache) only. The job is a JSON file, the answer
JSON on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

if os.environ.get("KCONFIGLIB_DIR"):  # after the standard library: nothing shadows it
    sys.path.append(os.environ["KCONFIGLIB_DIR"])

import kconfiglib

try:  # run as a script in the sandbox: its directory is on sys.path
    import kmodel  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # imported as part of lorebot
    from checks.build import kmodel

MAX_DEPTH = 24


class Solver:
    """Greedy search with undo over one loaded model and base config."""

    def __init__(self, kconf: Any):
        self.k = kconf
        self.trail: list[tuple[Any, Any]] = []  # (symbol, previous user value)
        self.blocked: dict[str, None] = {}  # symbols that could not be given what was asked
        self.stack: set[str] = set()

    # -- assignments with undo
    def _set(self, sym: Any, value: int) -> bool:
        self.trail.append((sym, sym.user_value))
        return bool(sym.set_value(value))

    def _mark(self) -> int:
        return len(self.trail)

    def _undo(self, mark: int) -> None:
        while len(self.trail) > mark:
            sym, old = self.trail.pop()
            if old is None:
                sym.unset_value()
            else:
                sym.set_value(old)

    # -- the search
    def want(self, sym: Any, on: bool, depth: int = 0) -> bool:
        """Make `sym` on (y or m) or off, with what it depends on; False when it cannot."""
        if not isinstance(sym, kconfiglib.Symbol):
            return (sym.tri_value > 0) == on if hasattr(sym, "tri_value") else False
        if (sym.tri_value > 0) == on:
            return True
        if (
            sym.name in self.stack
            or depth > MAX_DEPTH
            or sym.orig_type
            not in (
                kconfiglib.BOOL,
                kconfiglib.TRISTATE,
            )
        ):
            self.blocked.setdefault(sym.name, None)
            return False
        self.stack.add(sym.name)
        mark = self._mark()
        try:
            ok = self._on(sym, depth) if on else self._off(sym, depth)
            if ok and (sym.tri_value > 0) == on:
                return True
            self._undo(mark)
            self.blocked.setdefault(sym.name, None)
            return False
        finally:
            self.stack.discard(sym.name)

    def _on(self, sym: Any, depth: int) -> bool:
        if not self.true(sym.direct_dep, depth + 1):
            return False
        if any(n.prompt for n in sym.nodes):
            if not self.true(_visibility(sym), depth + 1):
                return False
            self._set(sym, 2 if 2 in sym.assignable else max(sym.assignable or (0,)))
            if sym.tri_value > 0:
                return True
        for default, cond in sym.defaults:  # a symbol without a prompt: its defaults ...
            mark = self._mark()
            if self.true(cond, depth + 1) and self.true(default, depth + 1) and sym.tri_value:
                return True
            self._undo(mark)
        for selector in _terms(sym.rev_dep):  # ... or something that selects it
            mark = self._mark()
            if self.true(selector, depth + 1) and sym.tri_value:
                return True
            self._undo(mark)
        for selector in _terms(sym.weak_rev_dep):  # `imply` counts when nothing forbids it
            mark = self._mark()
            if self.true(selector, depth + 1) and sym.tri_value:
                return True
            self._undo(mark)
        return sym.tri_value > 0

    def _off(self, sym: Any, depth: int) -> bool:
        for term in _terms(sym.rev_dep):  # whatever selects it must go first
            if kconfiglib.expr_value(term) and not self.false(term, depth + 1):
                return False
        if any(n.prompt for n in sym.nodes) and 0 in sym.assignable:
            self._set(sym, 0)
            if sym.tri_value == 0:
                return True
        # no prompt (or no way to say n): what it depends on, or its default's condition
        mark = self._mark()
        if self.false(sym.direct_dep, depth + 1):
            return True
        self._undo(mark)
        for default, cond in sym.defaults:
            if kconfiglib.expr_value(cond):
                mark = self._mark()
                if not (self.false(cond, depth + 1) or self.false(default, depth + 1)):
                    self._undo(mark)
                    return False
        return sym.tri_value == 0

    def true(self, expr: Any, depth: int) -> bool:
        """Make an expression true (y or m)."""
        return self.holds(expr, True, depth)

    def false(self, expr: Any, depth: int) -> bool:
        """Make an expression false (n)."""
        return self.holds(expr, False, depth)

    def holds(self, expr: Any, wanted: bool, depth: int) -> bool:
        """Make an expression true or false: `A && B` true and `A || B` false need both
        sides; the other two need one side, tried in turn (what a failed side set is undone)."""
        if bool(kconfiglib.expr_value(expr)) == wanted:
            return True
        if isinstance(expr, kconfiglib.Symbol):
            return self.want(expr, wanted, depth)
        if not isinstance(expr, tuple):
            return False
        op = expr[0]
        if op == kconfiglib.NOT:
            return self.holds(expr[1], not wanted, depth)
        if op not in (kconfiglib.AND, kconfiglib.OR):
            return _compare(self, expr, depth, wanted)
        sides = (expr[1], expr[2])
        tries = [sides] if (op == kconfiglib.AND) == wanted else [(s,) for s in sides]
        for needed in tries:
            mark = self._mark()
            if all(self.holds(s, wanted, depth) for s in needed) and (
                bool(kconfiglib.expr_value(expr)) == wanted
            ):
                return True
            self._undo(mark)
        return False


def _compare(solver: Solver, expr: Any, depth: int, want_true: bool) -> bool:
    """`X = y`, `X != n` and the like on a bool/tristate symbol; others are left alone."""
    op, left, right = expr
    if not isinstance(left, kconfiglib.Symbol) or right not in (solver.k.y, solver.k.n):
        return False
    equal = op == kconfiglib.EQUAL
    if op not in (kconfiglib.EQUAL, kconfiglib.UNEQUAL):
        return False
    on = (right is solver.k.y) == (equal == want_true)
    return solver.want(left, on, depth) and bool(kconfiglib.expr_value(expr)) == want_true


def _visibility(sym: Any) -> Any:
    """The condition of the first prompt (`bool "x" if COND` and the enclosing `if`s)."""
    for node in sym.nodes:
        if node.prompt:
            return node.prompt[1]
    return sym.kconfig.y


def _terms(expr: Any) -> list[Any]:
    """The operands of a chain of ORs (a rev_dep is `A && c1 || B && c2 …`)."""
    if isinstance(expr, tuple) and expr[0] == kconfiglib.OR:
        return _terms(expr[1]) + _terms(expr[2])
    return [] if expr is None or expr is getattr(expr, "kconfig", None) else [expr]


def solve(kconf: Any, base_config: str, requests: dict[str, str]) -> dict[str, Any]:
    """Symbols to set so that the requests hold on top of the base, or what blocks them."""
    kconf.load_config(base_config, replace=True)
    before = {s.name: s.str_value for s in kconf.unique_defined_syms}
    solver = Solver(kconf)
    unsolved = []
    for name, value in requests.items():
        sym = kconf.syms.get(name)
        if sym is None or not sym.nodes:
            unsolved.append(name)
            solver.blocked.setdefault(name, None)
            continue
        if not solver.want(sym, value != "n"):
            unsolved.append(name)
    changes = {
        s.name: s.str_value
        for s in kconf.unique_defined_syms
        if s.user_value is not None
        and s.str_value != before.get(s.name)
        and s.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE)
    }
    blocked = [b for b in solver.blocked if b not in requests] if unsolved else []
    return {"set": changes, "unsolved": unsolved, "blocked": blocked[:12]}


def run(job: dict[str, Any]) -> dict[str, Any]:
    """{"srctree", "env", "cache" (a model file or ""), "jobs": [{"config", "requests"}]}."""
    t0 = time.monotonic()
    kconf, how = kmodel.load(job["srctree"], job["env"], job.get("cache", ""))
    loaded = time.monotonic() - t0
    out = []
    for item in job["jobs"]:
        t = time.monotonic()
        result = solve(kconf, item["config"], item["requests"])
        result["seconds"] = round(time.monotonic() - t, 3)
        out.append(result)
    return {"load_seconds": round(loaded, 3), "model": how, "results": out}


def main() -> None:
    """The job from the JSON file named by argv[1]; the answer as JSON on stdout."""
    with open(sys.argv[1]) as f:
        job = json.load(f)
    answer: dict[str, Any] = {}
    # the model is a deep graph: parsing, pickling and evaluating it recurse far
    threading.stack_size(1 << 29)
    sys.setrecursionlimit(1_000_000)
    worker = threading.Thread(target=lambda: answer.update(run(job)))
    worker.start()
    worker.join()
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
