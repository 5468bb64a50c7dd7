"""Rules removed-symbol and prototype-change: names a patch removed or re-shaped."""

from __future__ import annotations

from bot.core.results import Finding
from checks.base import CheckContext
from checks.semantic.changes import ChangedPrototype, RemovedSymbol
from checks.semantic.collect import HeadTree, Parsed, enclosing_function, finding
from checks.semantic.cparse import occurrences
from checks.semantic.uses import call_arg_count, symbol_uses


def _defined(parsed: Parsed, name: str) -> bool:
    return name in parsed.defs.symbols() or name in parsed.defs.typedefs


def check_symbols(
    ctx: CheckContext, head: HeadTree, removed: list[RemovedSymbol], hits: dict[str, set[str]]
) -> list[Finding]:
    """Findings for references at HEAD to functions/macros/globals/enums the series removed."""
    out: list[Finding] = []
    for r in {s.name: s for s in removed}.values():
        files = sorted(hits.get(r.name, set()))
        if r.what == "static function" and r.file.endswith(".c"):
            files = [f for f in files if f == r.file]  # others have their own
        parsed_files = [p for p in (head.get(f) for f in files) if p is not None]
        if any(_defined(p, r.name) for p in parsed_files):
            continue  # still defined somewhere (moved, or another arch's copy)
        for parsed in parsed_files:
            for use in symbol_uses(parsed.source, parsed.tree, {r.name}):
                func = enclosing_function(use.node)
                where = f"{func}(): " if func else ""
                renamed = f" (renamed to '{r.renamed_to}'?)" if r.renamed_to else ""
                message = (
                    f"{where}{'calls' if use.how == 'call' else 'uses'} {r.what} "
                    f"'{r.name}', which patch {r.patch} removed{renamed}"
                )
                why = (
                    f"'{r.name}' was defined in {r.file}:{r.line} before patch {r.patch}; "
                    f"no definition is left in the tree."
                )
                out.append(
                    finding(
                        ctx, "removed-symbol", r.patch, parsed, use.node, use.line, message, why
                    )
                )
    return out


def _live(head: HeadTree, p: ChangedPrototype) -> bool:
    parsed = head.get(p.file)
    sigs = parsed.defs.functions.get(p.name, []) if parsed else []
    return bool(sigs) and {s.shape for s in sigs} == {p.new.shape}


def check_prototypes(
    ctx: CheckContext, head: HeadTree, changed: list[ChangedPrototype], hits: dict[str, set[str]]
) -> list[Finding]:
    """Calls at HEAD that still pass the old number of arguments to a changed function."""
    out: list[Finding] = []
    for p in {c.name: c for c in changed}.values():
        old_n, new_n = len(p.old.params), len(p.new.params)
        if old_n == new_n or p.old.variadic or p.new.variadic or not _live(head, p):
            continue
        parsed_files = [
            x for x in (head.get(f) for f in sorted(hits.get(p.name, set()))) if x is not None
        ]
        if any(
            len(s.params) == old_n for x in parsed_files for s in x.defs.functions.get(p.name, [])
        ):
            continue  # another definition with the old shape still exists
        for parsed in parsed_files:
            if p.name in parsed.defs.macros:
                continue
            for occ in occurrences(parsed.source, parsed.tree.root_node, p.name):
                n = occ.parent
                if (
                    n is None
                    or n.type != "call_expression"
                    or (n.child_by_field_name("function") != occ)
                ):
                    continue
                count = call_arg_count(n)
                if count != old_n:
                    continue
                func = enclosing_function(n)
                where = f"{func}(): " if func else ""
                message = (
                    f"{where}calls '{p.name}' with {count} argument(s), but patch "
                    f"{p.patch} changed it to take {new_n}"
                )
                why = (
                    f"Before patch {p.patch}: {p.old.render()}; now "
                    f"{p.new.render()} ({p.file}:{p.new.line})."
                )
                out.append(
                    finding(
                        ctx,
                        "prototype-change",
                        p.patch,
                        parsed,
                        n,
                        n.start_point[0] + 1,
                        message,
                        why,
                    )
                )
    return out
