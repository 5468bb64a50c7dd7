"""The one interface every check implements: what it gets (CheckContext) and declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.core.models import ApplyResult, Series
from bot.core.results import CheckResult
from bot.core.runner import Runner
from config.settings import Settings


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

    @property
    def base(self) -> str:
        return self.applied.base

    def commit_of(self, index: int) -> str:
        for p in self.applied.patches:
            if p.index == index and p.commit:
                return p.commit
        raise KeyError(index)

    @property
    def commits(self) -> list[tuple[int, str]]:
        return [(p.index, p.commit) for p in self.applied.patches if p.commit]

    @property
    def head(self) -> str:
        c = self.commits
        return c[-1][1] if c else self.applied.base


class Check(Protocol):
    """A check: a name and one entry point."""

    name: str

    def run(self, ctx: CheckContext) -> CheckResult: ...
