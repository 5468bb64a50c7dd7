"""The one interface every check implements: what it gets (CheckContext) and declares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from bot.core.git import Git
from bot.core.models import ApplyResult, Series
from bot.core.results import CheckResult
from bot.core.runner import Runner
from bot.core.sandbox import Limits, Sandbox
from config.settings import SandboxSettings, Settings


@dataclass
class CheckContext:
    """What a check gets: the applied series, its worktree, caches, settings, a runner."""

    series: Series
    applied: ApplyResult
    worktree: Path
    settings: Settings
    runner: Runner
    cache_dir: Path
    log_dir: Path
    patch_diffs: dict[int, str] = field(default_factory=dict)  # index -> diff text
    progress: Callable[[str, float | None], None] = lambda step, frac: None
    # where code from the series runs (make, scripts/config, checkpatch, kernel-doc)
    sandbox: Sandbox = field(default_factory=Sandbox)
    # the configured tree's commit the series went on; "" = `base` itself. A follow-up
    # is checked against its parent's head (untrusted code), the tools come from here
    tree_base: str = ""
    # scale-out: runs the build check's jobs (checks.build.jobs.JobSpec -> JobResult) on
    # `lorebot worker` processes and returns their results; None = build in-process
    run_jobs: Callable[[list[Any]], list[Any]] | None = None

    @property
    def git(self) -> Git:
        """git in the worktree, with the safe options."""
        return Git(self.runner, worktree=self.worktree)

    @property
    def base(self) -> str:
        return self.applied.base

    @property
    def trusted_base(self) -> bool:
        """The base holds only a configured tree's code: builds of it may feed the caches."""
        return not self.tree_base or self.tree_base == self.base

    @property
    def tools_base(self) -> str:
        """The commit whose checkpatch and kernel-doc judge the series (never the series')."""
        return self.tree_base or self.base

    @property
    def commits(self) -> list[tuple[int, str]]:
        return [(p.index, p.commit) for p in self.applied.patches if p.commit]

    @property
    def head(self) -> str:
        c = self.commits
        return c[-1][1] if c else self.applied.base


def sandbox_for(settings: SandboxSettings, runner: Runner) -> Sandbox:
    """The sandbox of these settings on this machine; raises SandboxUnavailable."""
    return Sandbox.here(
        bwrap=settings.bwrap,
        uid=settings.uid,
        limits=Limits(
            cpu_seconds=settings.cpu_seconds,
            memory_bytes=settings.memory_bytes,
            processes=settings.processes,
            file_bytes=settings.file_bytes,
            tmp_bytes=settings.tmp_bytes,
        ),
        allow_unsandboxed=settings.allow_unsandboxed,
        runner=runner,
    )


class Scope(StrEnum):
    """What a check looks at."""

    PER_PATCH = "per-patch"  # each patch against the one before (attributes to a patch)
    PER_SERIES = "per-series"  # the tree after the whole series


class Check(Protocol):
    """A check: a name, what it needs, the titles of its kinds, and one entry point.

    `moves_head`: the check checks out other commits in the worktree (the
    pipeline puts the series' head back after it). `tools`: the programs it
    runs. `titles`: kind -> what broke, as the reply's heading says it.
    """

    name: str
    scope: Scope
    tools: tuple[str, ...]
    moves_head: bool
    titles: Mapping[str, str]

    def run(self, ctx: CheckContext) -> CheckResult: ...
