"""The kernel's own tests for what a series touches: host suites and KUnit.

`RuntimeCheck().run(ctx)` picks suites from the paths the series changes (the
table in config/runtime.toml): the userspace suites under tools/testing/
(vma, memblock, the radix-tree programs) and the KUnit test of a changed file.
They are built and run in the sandbox at the base and after the series (after
each patch where cheap); a test that passed at the base and fails after the
series is a finding of the first patch it fails at (`check`).
"""

from __future__ import annotations

from pathlib import Path

from bot.core.results import CheckResult
from checks.base import CheckContext, Scope
from checks.runtime.check import TITLES, RuntimeRun
from checks.runtime.table import load_table


class RuntimeCheck:
    """The "runtime" check."""

    name = "runtime"
    scope = Scope.PER_PATCH
    tools = ("make", "gcc", "python3")
    moves_head = True  # it checks out the base and the patches it needs
    titles = TITLES

    def run(self, ctx: CheckContext) -> CheckResult:
        """Failing tests new after the series; notes (flaky, failing at the base) and the
        suites' pass/fail/skip counts."""
        table = ctx.settings.runtime.table
        return RuntimeRun(ctx, load_table(Path(table) if table else None)).run()


__all__ = ["RuntimeCheck"]
