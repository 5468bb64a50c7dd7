"""Reading the series: per-patch definition changes, and parsed files at HEAD."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tree_sitter import Node, Tree

from bot.core.diff import excerpt, parse_diff
from bot.core.results import Finding
from checks.base import CheckContext
from checks.semantic import changes as ch
from checks.semantic.cparse import FileDefs, file_defs, guards, parse, text
from checks.semantic.where import build_note, guard_note

TITLES = {
    "removed-member": "use of a removed struct member",
    "ops-initializer": "initializer of a removed callback",
    "removed-symbol": "use of a removed function or macro",
    "prototype-change": "caller of a changed prototype",
    "stub-mismatch": "#else stub that no longer matches",
}


@dataclass
class Parsed:
    """One file of the tree at HEAD, parsed once and shared by the rules."""

    path: str
    source: bytes
    tree: Tree
    defs: FileDefs

    @property
    def lines(self) -> list[str]:
        return self.source.decode("utf-8", "replace").splitlines()


@dataclass
class HeadTree:
    """Lazily parsed files of the worktree (which is at the series' HEAD)."""

    worktree: Path
    files: dict[str, Parsed | None] = field(default_factory=dict)

    def get(self, path: str) -> Parsed | None:
        if path not in self.files:
            f = self.worktree / path
            self.files[path] = from_source(path, f.read_bytes()) if f.is_file() else None
        return self.files[path]


def from_source(path: str, source: bytes) -> Parsed:
    tree = parse(source)
    return Parsed(path, source, tree, file_defs(tree))


def series_changes(ctx: CheckContext) -> ch.PatchChanges:
    """Everything each patch of the series removes or changes in C definitions."""
    total = ch.PatchChanges()
    parent = ctx.base
    for index, commit in ctx.commits:
        diff = ctx.patch_diffs.get(index, "")
        files = [f for f in parse_diff(diff) if f.is_c]
        specs = [f"{parent}:{f.old_path}" for f in files if f.old_path]
        specs += [f"{commit}:{f.new_path}" for f in files if f.new_path]
        blobs = ctx.git.read_blobs(specs)
        old: dict[str, FileDefs] = {}
        new: dict[str, FileDefs] = {}
        for f in files:
            before = blobs.get(f"{parent}:{f.old_path}") if f.old_path else None
            after = blobs.get(f"{commit}:{f.new_path}") if f.new_path else None
            if before is not None and f.old_path:
                old[f.old_path] = file_defs(parse(before))
            if after is not None and f.new_path:
                new[f.new_path] = file_defs(parse(after))
        total.members += ch.removed_members(index, old, new)
        total.symbols += ch.removed_symbols(index, old, new)
        total.prototypes += ch.changed_prototypes(index, old, new)
        for f in files:
            if f.old_path in old and f.new_path in new and f.old_path and f.new_path:
                total.stubs += ch.broken_stubs(index, f.new_path, old[f.old_path], new[f.new_path])
        parent = commit
    return total


def enclosing_function(node: Node) -> str:
    """Name of the function definition around a node, '' at file scope."""
    p: Node | None = node
    while p is not None:
        if p.type == "function_definition":
            d = p.child_by_field_name("declarator")
            while d is not None and d.type != "function_declarator":
                d = d.child_by_field_name("declarator")
            if d is not None:
                return text(d.child_by_field_name("declarator"))
        p = p.parent
    return ""


def finding(
    ctx: CheckContext,
    kind: str,
    patch: int,
    parsed: Parsed,
    node: Node,
    line: int,
    message: str,
    why: str,
) -> Finding:
    """A semantic finding at `line` of a HEAD file, with excerpt and build detail."""
    lines = parsed.lines
    source_line = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    detail = (
        f"{why} {build_note(ctx.worktree, parsed.path)}; the use is {guard_note(guards(node))}."
    )
    return Finding(
        check="semantic",
        kind=kind,
        severity="error",
        patch=patch,
        file=parsed.path,
        line=line,
        message=message,
        excerpt=excerpt(lines, line),
        source_line=source_line,
        detail=detail.strip(),
        title=TITLES[kind],
    )
