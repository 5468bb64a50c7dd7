"""Build checks over the Kconfig combinations and arches a series really affects.

`BuildCheck().run(ctx)` derives the objects, Kconfig symbols and arches from
each patch's diff (`impact`, `kbuild`, `cond`), makes and verifies config
variants per arch (`variants`, `make`), builds only affected objects at the
base and after each patch, and reports the compiler diagnostics that are new
(`diagnostics`), attributed to the first patch that shows them.
"""

from __future__ import annotations

from bot.core.results import CheckResult
from checks.base import CheckContext, Scope
from checks.build.check import BuildRun
from checks.build.findings import TITLES
from checks.build.toolchains import Arch


class BuildCheck:
    """The "build" check."""

    name = "build"
    scope = Scope.PER_PATCH
    tools = ("make", "gcc", "ccache")
    moves_head = True  # it checks out the base and each patch in turn
    titles = TITLES

    def __init__(self, arches: dict[str, Arch] | None = None):
        self.arches = arches

    def run(self, ctx: CheckContext) -> CheckResult:
        """New compiler errors and warnings per patch; notes (toolchains, refusals, dropped
        variants) and the plan of variants built and dropped."""
        return BuildRun(ctx, self.arches).run()


__all__ = ["BuildCheck"]
