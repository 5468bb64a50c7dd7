"""What a patch removes or changes, from the definitions before and after it (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from checks.semantic.cparse import FileDefs, Signature

_INCLUDE_GUARD = re.compile(r"^_*[A-Z0-9_]*_H(_\w*)?_*$")


@dataclass(frozen=True)
class RemovedMember:
    patch: int
    struct: str  # "struct balloon_dev_info"
    member: str
    file: str  # where the struct is defined
    line: int  # the member's line before the patch
    function_pointer: bool
    renamed_to: str = ""


@dataclass(frozen=True)
class RemovedSymbol:
    patch: int
    name: str
    what: str  # "function", "macro", "variable", "enum constant"
    file: str
    line: int  # before the patch
    renamed_to: str = ""


@dataclass(frozen=True)
class ChangedPrototype:
    patch: int
    name: str
    file: str
    old: Signature
    new: Signature


@dataclass(frozen=True)
class BrokenStub:
    patch: int
    name: str
    file: str
    changed: Signature | None  # the side the patch changed (None: that side was removed)
    other: Signature  # a side the patch left as it was
    removed: Signature | None = None


@dataclass
class PatchChanges:
    members: list[RemovedMember] = field(default_factory=list)
    symbols: list[RemovedSymbol] = field(default_factory=list)
    prototypes: list[ChangedPrototype] = field(default_factory=list)
    stubs: list[BrokenStub] = field(default_factory=list)


def removed_members(
    patch: int, old: dict[str, FileDefs], new: dict[str, FileDefs]
) -> list[RemovedMember]:
    """Members of structs still defined after the patch that the patch removed."""
    after: dict[str, dict] = {}
    for defs in new.values():
        for s, members in defs.structs.items():
            after.setdefault(s, {}).update(members)
    out = []
    for path, defs in old.items():
        for s, members in defs.structs.items():
            if s not in after:
                continue
            gone = [m for m in members.values() if m.name not in after[s]]
            added = [m for m in after[s].values() if m.name not in members]
            for m in gone:
                same = [
                    a.name
                    for a in added
                    if (a.type, a.function_pointer) == (m.type, m.function_pointer)
                ]
                out.append(
                    RemovedMember(
                        patch,
                        s,
                        m.name,
                        path,
                        m.line,
                        m.function_pointer,
                        same[0] if len(same) == 1 and len(gone) == 1 else "",
                    )
                )
    return out


def removed_symbols(
    patch: int, old: dict[str, FileDefs], new: dict[str, FileDefs]
) -> list[RemovedSymbol]:
    """Functions, macros, globals and enum constants defined before but not after the patch."""
    after: set[str] = set()
    added: dict[str, str] = {}
    before: set[str] = set()
    for defs in old.values():
        before.update(defs.symbols())
    for defs in new.values():
        for name, (what, _line) in defs.symbols().items():
            after.add(name)
            if name not in before:
                added[name] = what
    out = []
    for path, defs in old.items():
        for name, (what, line) in defs.symbols().items():
            if name in after or not name or _INCLUDE_GUARD.match(name):
                continue
            same = [a for a, w in added.items() if w == what]
            out.append(
                RemovedSymbol(patch, name, what, path, line, same[0] if len(same) == 1 else "")
            )
    return list({s.name: s for s in out}.values())


def _shapes(sigs: list[Signature]) -> set[tuple[str, tuple[str, ...], bool]]:
    return {s.shape for s in sigs}


def changed_prototypes(
    patch: int, old: dict[str, FileDefs], new: dict[str, FileDefs]
) -> list[ChangedPrototype]:
    """Functions with one signature before and one, different, after the patch."""

    def collect(side: dict[str, FileDefs]) -> dict[str, tuple[str, list[Signature]]]:
        out: dict[str, tuple[str, list[Signature]]] = {}
        for path, defs in side.items():
            for name, sigs in defs.functions.items():
                out.setdefault(name, (path, []))[1].extend(sigs)
        return out

    before, after = collect(old), collect(new)
    out = []
    for name, (_path, sigs) in before.items():
        if name not in after:
            continue
        new_path, new_sigs = after[name]
        olds, news = _shapes(sigs), _shapes(new_sigs)
        if len(olds) == 1 and len(news) == 1 and olds != news:
            out.append(ChangedPrototype(patch, name, new_path, sigs[0], new_sigs[0]))
    return out


def _sides(sigs: list[Signature]) -> dict[tuple[str, ...], Signature]:
    return {s.guards: s for s in sigs}


def broken_stubs(patch: int, path: str, old: FileDefs, new: FileDefs) -> list[BrokenStub]:
    """Functions whose #ifdef sides matched before the patch and no longer do after it."""
    out = []
    for name, sigs in old.functions.items():
        before = _sides(sigs)
        if len(before) < 2 or len(_shapes(sigs)) != 1:
            continue
        after = _sides(new.functions.get(name, []))
        if not after:
            continue  # every side removed: a removed symbol, not a stub problem
        if len(_shapes(list(after.values()))) > 1:
            kept = [s for g, s in after.items() if g in before and before[g].shape == s.shape]
            changed = [s for g, s in after.items() if s.shape != (kept[0].shape if kept else None)]
            if kept and changed:
                out.append(BrokenStub(patch, name, path, changed[0], kept[0]))
        elif set(after) < set(before):
            gone = [before[g] for g in before if g not in after]
            other = next(iter(after.values()))
            out.append(BrokenStub(patch, name, path, None, other, gone[0]))
    return out
