"""Pure parts of the pipeline: dedupe of findings from several checks."""

from __future__ import annotations

from bot.core.results import Finding
from bot.run.pipeline import dedupe


def f(patch: int, line: int, arch: str = "", check: str = "semantic") -> Finding:
    return Finding(
        check=check,
        kind="removed-member",
        severity="error",
        patch=patch,
        file="mm/zsmalloc.c",
        line=line,
        message="'name' is no longer a member",
        arch=arch,
    )


def test_dedupe_keeps_distinct_lines_and_drops_repeats() -> None:
    out = dedupe([f(2, 30), f(1, 10), f(1, 20), f(1, 10)])
    assert [(x.patch, x.line) for x in out] == [(1, 10), (1, 20), (2, 30)]


def test_dedupe_keeps_one_per_arch() -> None:
    out = dedupe(
        [f(1, 5, "x86_64", "build"), f(1, 5, "powerpc", "build"), f(1, 5, "x86_64", "build")]
    )
    assert sorted(x.arch for x in out) == ["powerpc", "x86_64"]
