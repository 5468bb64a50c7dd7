"""A compiler diagnostic new at a patch, as a Finding (pure but for reading the source).

The reproduce lines are what a person runs in their own tree (a build dir of
their own, not our cache path); lines are quoted only from regular files inside
the worktree: a diagnostic in a file of the host is reported without its words.
"""

from __future__ import annotations

from pathlib import Path

from bot.core.diff import excerpt
from bot.core.results import Finding
from bot.core.treepath import OUTSIDE, escapes, inside
from checks.build.diagnostics import Diagnostic
from checks.build.lane import Lane
from checks.build.make import FIXED, config_args
from checks.build.variants import fragment, value

TITLES = {"error": "build error", "warning": "build warning"}


def _unquoted(d: Diagnostic) -> Diagnostic:
    """A diagnostic in a file outside the tree, without any of that file's words."""
    return Diagnostic(
        file=OUTSIDE,
        line=0,
        column=None,
        severity=d.severity,
        message="the compiler reports a problem in a file outside the source tree (not quoted)",
        option=d.option,
        function="",
        include_chain=tuple(c for c in d.include_chain if not c.startswith("/")),
    )


def finding(
    wt: Path, index: int, lane: Lane, d: Diagnostic, objects: list[str], w1: bool
) -> Finding:
    """The Finding of a new diagnostic at patch `index` in `lane`: where, what, how to
    reproduce it; lines quoted only from files inside the tree."""
    if escapes(wt, d.file):
        # a file of the host, or reached through a link: never quoted
        d = _unquoted(d)
    src = inside(wt, d.file)
    text = src.read_text(errors="replace") if src else ""
    lines = text.splitlines()
    symbols = lane.symbols()
    source = d.include_chain[-1].rsplit(":", 1)[0] if d.include_chain else d.file
    obj = next((o for o in objects if o[:-2] == source[:-2]), objects[0] if objects else "")
    setup = {**lane.variant.helpers, **lane.variant.spec.wanted}
    fixed = {s: v for s, v in FIXED.items() if s in lane.defconfig}
    # what was asked for and took effect (a helper symbol of another arch does not exist
    # here: olddefconfig dropped it, and the reader has nothing to set)
    changed = {
        s: v
        for s, v in {**fixed, **setup}.items()
        if v != value(lane.defconfig, s) and value(lane.variant.config, s) == v
    }
    # what a person runs in their own tree (the report says how to get the
    # patches applied): a build dir of their own, not our cache path
    odir = Path("build")
    repro = [lane.make.shown(odir, lane.variant.spec.target)]
    if changed:
        repro.append(
            " ".join(["./scripts/config", "--file", f"{odir}/.config", *config_args(changed)])
        )
        repro.append(lane.make.shown(odir, "olddefconfig"))
    repro.append(lane.make.shown(odir, *(["W=1"] if w1 else []), obj))
    detail = []
    if d.include_chain:
        detail.append("in file included from " + ", from ".join(d.include_chain))
    if d.function:
        detail.append(f"in function {d.function}()")
    detail += [f"note: {n}" for n in d.notes[:3]]
    return Finding(
        check="build",
        kind=d.severity,
        severity=d.severity,
        patch=index,
        file=d.file,
        line=d.line,
        column=d.column,
        message=d.message,
        option=d.option,
        excerpt=excerpt(lines, d.line) if text else "",
        source_line=lines[d.line - 1] if 0 < d.line <= len(lines) else "",
        arch=lane.arch.name,
        config=lane.config_label,
        symbols=symbols,
        compiler=lane.compiler,
        reproduce=tuple(repro),
        config_fragment=fragment({**changed, **symbols}),
        detail="\n".join(detail),
        title=TITLES.get(d.severity, f"build {d.severity}"),
    )
