"""Where a finding lives: source excerpts and which configurations compile a file."""

from __future__ import annotations

import re
from pathlib import Path

_ASSIGN = re.compile(r"^\s*([\w-]+?)-(\$\((CONFIG_\w+)\)|y|m|objs)\s*[:+]?=(.*)$")
_INCLUDE_GUARD = re.compile(r"^!_*[A-Z0-9_]*_H_*$")


def _assignments(makefile: str) -> list[tuple[str, str, list[str]]]:
    """(target prefix, condition, objects) of each `x-$(CONFIG_Y) += a.o b/` line."""
    joined = re.sub(r"\\\n", " ", makefile)
    out = []
    for line in joined.splitlines():
        m = _ASSIGN.match(line.split("#", 1)[0])
        if m:
            cond = m.group(3) or m.group(2).strip()
            out.append((m.group(1), cond, m.group(4).split()))
    return out


def obj_rule(makefile: str, obj: str, depth: int = 0) -> str:
    """The Kbuild rule that builds `obj` ('foo.o' or 'dir/'): e.g. 'obj-$(CONFIG_ZSMALLOC)'.

    Composite objects are followed to the rule that builds the composite
    ('zram-y via obj-$(CONFIG_ZRAM)'); '' when no rule names the object.
    """
    if depth > 3:
        return ""
    for prefix, cond, objs in _assignments(makefile):
        if obj not in objs:
            continue
        rule = f"{prefix}-$({cond})" if cond.startswith("CONFIG_") else f"{prefix}-{cond}"
        if prefix in ("obj", "lib", "core", "drivers", "libs", "net"):
            return rule
        parent = obj_rule(makefile, f"{prefix}.o", depth + 1)
        return f"{rule} via {parent}" if parent else rule
    return ""


def build_note(worktree: Path, path: str) -> str:
    """Which configurations compile `path`, from the Makefile next to it."""
    p = Path(path)
    if p.suffix == ".h":
        return f"{path} is a header: it breaks every object that includes it"
    directory = worktree / p.parent
    for name in ("Makefile", "Kbuild"):
        mk = directory / name
        if mk.is_file():
            rule = obj_rule(mk.read_text(errors="replace"), p.with_suffix(".o").name)
            if rule:
                return f"{path} is built by {rule} in {p.parent / name}"
    return f"no Kbuild rule for {p.with_suffix('.o').name} found in {p.parent}/Makefile"


def guard_note(guards: tuple[str, ...]) -> str:
    """The #if conditions around a use, in words."""
    real = [g for g in guards if not _INCLUDE_GUARD.match(g)]
    return "under #if " + " && ".join(real) if real else "not under any #if"
