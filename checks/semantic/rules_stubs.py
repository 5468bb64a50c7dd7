"""Rule stub-mismatch: #ifdef definitions whose #else stub no longer matches."""

from __future__ import annotations

from bot.core.results import Finding
from checks.base import CheckContext
from checks.semantic.changes import BrokenStub
from checks.semantic.collect import HeadTree, finding
from checks.semantic.cparse import guard_text, walk
from checks.semantic.where import guard_note


def _still_broken(head: HeadTree, b: BrokenStub) -> bool:
    parsed = head.get(b.file)
    if parsed is None:
        return False
    sides = {s.guards: s for s in parsed.defs.functions.get(b.name, [])}
    if b.changed is None:
        return b.other.guards in sides and b.removed is not None and (b.removed.guards not in sides)
    return len({s.shape for s in sides.values()}) > 1


def check_stubs(ctx: CheckContext, head: HeadTree, broken: list[BrokenStub]) -> list[Finding]:
    """One finding per function whose configuration-dependent sides disagree at HEAD."""
    out: list[Finding] = []
    for b in broken:
        parsed = head.get(b.file)
        if parsed is None or not _still_broken(head, b):
            continue
        sides = {s.guards: s for s in parsed.defs.functions.get(b.name, [])}
        if b.changed is not None:
            at = sides.get(b.other.guards, b.other)
            message = (
                f"'{b.name}' {guard_note(b.changed.guards)} is now "
                f"{b.changed.render()}, but its other side {guard_note(at.guards)} "
                f"still is {at.render()}"
            )
            why = (
                f"Patch {b.patch} changed only one side; configurations with "
                f"{guard_text(at.guards) or 'the other branch'} get the old interface."
            )
        else:
            at = sides.get(b.other.guards, b.other)
            gone = b.removed
            message = (
                f"'{b.name}' {guard_note(gone.guards if gone else ())} was removed, "
                f"but the side {guard_note(at.guards)} remains"
            )
            why = (
                f"Patch {b.patch} removed one side only; configurations with "
                f"{guard_text(gone.guards) if gone else 'that branch'} no longer declare it."
            )
        node = next(
            (n for n in walk(parsed.tree.root_node) if n.start_point[0] + 1 == at.line),
            parsed.tree.root_node,
        )
        out.append(finding(ctx, "stub-mismatch", b.patch, parsed, node, at.line, message, why))
    return out
