"""The one interface every check implements, and the Finding it returns."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, computed_field

from bot.models import ApplyResult, Series
from bot.runner import Runner
from config.settings import Settings

_NUMS = re.compile(r"\b\d+\b")
_QUOTED_LINE = re.compile(r":\d+(:\d+)?")


def normalize_message(message: str) -> str:
    """Message text without line/column numbers, so moved code compares equal."""
    return _NUMS.sub("N", _QUOTED_LINE.sub("", message)).strip()


class Finding(BaseModel):
    """One problem a check found, attributed to the first patch that causes it."""

    model_config = ConfigDict(frozen=True)

    check: str  # "build", "semantic", "kernel-doc", "checkpatch"
    kind: str  # rule or diagnostic kind: "error", "warning", "removed-member", ...
    severity: str  # "error", "warning", "check"/"info"
    patch: int | None  # 1-based index in series.patches; None = the series as a whole
    file: str = ""
    line: int | None = None
    column: int | None = None
    message: str = ""
    option: str = ""  # e.g. "-Wunused-but-set-variable"
    excerpt: str = ""  # source lines around `line`, numbered, offending line marked
    source_line: str = ""
    arch: str = ""
    config: str = ""  # "defconfig MIGRATION=n"
    symbols: dict[str, str] = {}  # symbols that differ from the base config
    compiler: str = ""
    reproduce: tuple[str, ...] = ()  # commands that reproduce it
    config_fragment: str = ""
    detail: str = ""  # free text: why and where it breaks (e.g. which configs build the file)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fingerprint(self) -> str:
        key = "\0".join((self.check, self.kind, self.file, normalize_message(self.message)))
        return hashlib.sha1(key.encode()).hexdigest()[:16]


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

    def run(self, ctx: CheckContext) -> list[Finding]: ...
