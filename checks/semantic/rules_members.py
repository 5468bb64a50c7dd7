"""Rules removed-member and ops-initializer: uses of struct members a patch removed."""

from __future__ import annotations

import re

from tree_sitter import Node

from bot.core.results import Finding
from checks.base import CheckContext
from checks.semantic.changes import RemovedMember
from checks.semantic.collect import HeadTree, Parsed, enclosing_function, finding
from checks.semantic.cparse import text
from checks.semantic.gitio import grep_files, grep_union
from checks.semantic.types import FileTypes, TypeDb
from checks.semantic.uses import member_uses

_MAX_TYPE_FILES = 400  # headers parsed for layouts and carriers
_MAX_READ = 2000  # above this many files, filter with git grep (if few words)
_MAX_GREP_WORDS = 60


def carriers(files: list[Parsed], types: dict[str, str]) -> tuple[dict[str, str], TypeDb]:
    """Names declared with one of `types` in `files`, and the structs those files define.

    `types` maps a spelling ('struct foo', 'foo_t') to the type it resolves to.
    A carrier is a struct member, global or function whose (pointed-to or
    returned) type is one of them: `struct balloon_dev_info vb_dev_info;` in
    struct virtio_balloon gives {'vb_dev_info': 'struct balloon_dev_info'}.
    Used only where the owner of a member is unknown.
    """
    db = TypeDb()
    out: dict[str, str] = {}
    for parsed in files:
        defs = parsed.defs
        db.add_defs(defs)
        for members in defs.structs.values():
            for m in members.values():
                if m.type in types and not m.function_pointer:
                    out.setdefault(m.name, types[m.type])
        for name, t in defs.globals.items():
            if t in types:
                out.setdefault(name, types[t])
        for name, sigs in defs.functions.items():
            ret = sigs[0].ret.rstrip("*")
            if ret in types:
                out.setdefault(name, types[ret])
    db.carriers = out
    return out, db


def _live(head: HeadTree, removed: list[RemovedMember]) -> list[RemovedMember]:
    """Removals still true at HEAD (no later patch put the member back)."""
    out = []
    for r in removed:
        parsed = head.get(r.file)
        members = parsed.defs.structs.get(r.struct) if parsed else None
        if members is not None and r.member not in members:
            out.append(r)
    return out


def spellings(head: HeadTree, removed: list[RemovedMember]) -> dict[str, str]:
    """How the source names the structs that lost members: 'struct S' and its typedefs."""
    out: dict[str, str] = {}
    for r in removed:
        parsed = head.get(r.file)
        if parsed is not None:
            out[r.struct] = r.struct
            for name, target in parsed.defs.typedefs.items():
                if target == r.struct:
                    out[name] = r.struct
    return out


def type_words(head: HeadTree, removed: list[RemovedMember]) -> set[str]:
    """The words to `git grep` for files that may hold a removed member's struct."""
    return {s.split()[-1] for s in spellings(head, _live(head, removed))}


def check_members(
    ctx: CheckContext, head: HeadTree, removed: list[RemovedMember], hits: dict[str, set[str]]
) -> list[Finding]:
    """Findings for every use at HEAD of a member the series removed.

    `hits` maps each of type_words() to the files that contain it.
    """
    removed = _live(head, removed)
    if not removed:
        return []
    names = spellings(head, removed)
    type_files: dict[str, set[str]] = {}  # struct -> files that name it
    for spelling, struct in names.items():
        type_files.setdefault(struct, set()).update(hits.get(spelling.split()[-1], set()))
    # headers give the layouts and the names declared with the type (fields, externs,
    # functions); a .c file that names the type is a candidate anyway
    headers = sorted(
        {f for files in type_files.values() for f in files if f.endswith(".h")},
        key=lambda p: (not p.startswith("include/"), p),
    )
    parsed_headers = [p for p in (head.get(f) for f in headers[:_MAX_TYPE_FILES]) if p]
    found, db = carriers(parsed_headers, names)
    for r in removed:  # the defining files last: their layout wins
        parsed = head.get(r.file)
        if parsed is not None:
            db.add_defs(parsed.defs)
    member_hits = grep_files(ctx.runner, ctx.worktree, {r.member for r in removed})
    info: dict[tuple[str, str], RemovedMember] = {}
    for r in removed:
        info.setdefault((r.struct, r.member), r)
    out: list[Finding] = []
    for struct in sorted(type_files):
        members = {r.member for r in removed if r.struct == struct}
        words = {sp.split()[-1] for sp, t in names.items() if t == struct}
        words |= {w for w, t in found.items() if t == struct}
        with_member = set().union(*(member_hits.get(m, set()) for m in members))
        candidates = _mentioning(ctx, with_member, words) | (with_member & type_files[struct])
        for path in sorted(candidates):
            parsed = head.get(path)
            if parsed is None:
                continue
            types = FileTypes(parsed.defs, db)
            for use in member_uses(parsed.source, parsed.tree, types, {struct: members}):
                out.append(
                    _finding(ctx, parsed, use.node, use.line, use.how, info[(use.owner, use.name)])
                )
    return out


def _mentioning(ctx: CheckContext, files: set[str], words: set[str]) -> set[str]:
    """Those of `files` that mention any of `words` (the type or a name declared with it).

    Few files: read them here; many files and few words: one `git grep -l`.
    (`git grep` with hundreds of -w patterns takes minutes, so it is avoided.)
    """
    if not files or not words:
        return set()
    if len(files) > _MAX_READ and len(words) <= _MAX_GREP_WORDS:
        return grep_union(ctx.runner, ctx.worktree, words) & files
    pattern = re.compile(
        rb"\b(?:" + b"|".join(re.escape(w.encode()) for w in sorted(words)) + rb")\b"
    )
    out = set()
    for path in files:
        try:
            data = (ctx.worktree / path).read_bytes()
        except OSError:
            continue
        if pattern.search(data):
            out.add(path)
    return out


def _finding(
    ctx: CheckContext, parsed: Parsed, node: Node, line: int, how: str, r: RemovedMember
) -> Finding:
    func = enclosing_function(node)
    where = f"{func}(): " if func else ""
    renamed = f" (renamed to '{r.renamed_to}'?)" if r.renamed_to else ""
    ops = how.startswith(".") and r.function_pointer
    expr = text(node).split("\n")[0][:80]
    if ops:
        message = (
            f"{where}initializer of {r.struct} still sets callback '.{r.member}', "
            f"which patch {r.patch} removed from {r.struct}{renamed}"
        )
    else:
        message = (
            f"{where}'{expr}' uses member '{r.member}' of {r.struct}, which patch "
            f"{r.patch} removed{renamed}"
        )
    why = (
        f"'{r.member}' was declared in {r.file}:{r.line} before patch {r.patch}; "
        f"it is gone at the end of the series, so this no longer compiles."
    )
    return finding(
        ctx,
        "ops-initializer" if ops else "removed-member",
        r.patch,
        parsed,
        node,
        line,
        message,
        why,
    )
