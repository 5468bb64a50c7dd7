"""The semantic check: what no single build can see, over the whole tree at HEAD.

Rules: removed-member, ops-initializer, removed-symbol, prototype-change and
stub-mismatch. Each patch's C definitions are compared before and after it
(tree-sitter on both versions of the files it touches); what it removed or
changed is then looked up at the end of the series with `git grep` and
parsed with tree-sitter, type-aware where a type decides (struct members).
"""

from __future__ import annotations

from bot.core.results import CheckResult, Finding, dedupe
from checks.base import CheckContext, Scope
from checks.semantic.collect import TITLES, HeadTree, series_changes
from checks.semantic.gitio import grep_files
from checks.semantic.rules_members import check_members, type_words
from checks.semantic.rules_stubs import check_stubs
from checks.semantic.rules_symbols import check_prototypes, check_symbols


class SemanticCheck:
    """Config-independent checks of a series against the whole tree."""

    name = "semantic"
    scope = Scope.PER_SERIES
    tools = ("git",)
    moves_head = False
    titles = TITLES

    def run(self, ctx: CheckContext) -> CheckResult:
        ctx.progress("semantic: reading the series", 0.0)
        changes = series_changes(ctx)
        head = HeadTree(ctx.worktree)
        findings: list[Finding] = []
        names = {s.name for s in changes.symbols} | {p.name for p in changes.prototypes}
        # one pass over the tree for the symbols and the struct names together
        hits = grep_files(ctx.runner, ctx.worktree, names | type_words(head, changes.members))
        ctx.progress("semantic: removed members", 0.2)
        findings += check_members(ctx, head, changes.members, hits)
        ctx.progress("semantic: removed symbols", 0.5)
        findings += check_symbols(ctx, head, changes.symbols, hits)
        ctx.progress("semantic: prototypes", 0.7)
        findings += check_prototypes(ctx, head, changes.prototypes, hits)
        findings += check_stubs(ctx, head, changes.stubs)
        ctx.progress("semantic: done", 1.0)
        return CheckResult.of(dedupe(findings))


__all__ = ["SemanticCheck"]
