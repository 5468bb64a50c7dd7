"""The tree-wide `git grep`s the semantic check needs, through the run's command runner."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bot.core.runner import Runner

C_PATHSPEC = ("*.c", "*.h")


def _grep(
    runner: Runner, worktree: Path, flags: list[str], words: list[str], paths: list[str] | None
) -> list[str]:
    out: list[str] = []
    spec = list(paths) if paths is not None else list(C_PATHSPEC)
    for start in range(0, len(words), 200):
        argv = ["git", "grep", "-I", "-w", "-F", *flags]
        for w in words[start : start + 200]:
            argv += ["-e", w]
        for pstart in range(0, max(len(spec), 1), 2000):
            r = runner.run(
                [*argv, "--", *spec[pstart : pstart + 2000]], cwd=worktree, name="git-grep"
            )
            out += r.stdout.splitlines()
    return out


def grep_files(
    runner: Runner, worktree: Path, words: Iterable[str], paths: list[str] | None = None
) -> dict[str, set[str]]:
    """word -> C files of the worktree where it occurs as a word (optionally within `paths`)."""
    wanted = sorted(set(words))
    result: dict[str, set[str]] = {w: set() for w in wanted}
    if not wanted or paths == []:
        return result
    for line in _grep(runner, worktree, ["-o"], wanted, paths):
        path, _, word = line.rpartition(":")
        if word in result:
            result[word].add(path)
    return result


def grep_union(runner: Runner, worktree: Path, words: Iterable[str]) -> set[str]:
    """C files of the worktree where any of `words` occurs as a word."""
    wanted = sorted(set(words))
    return set(_grep(runner, worktree, ["-l"], wanted, None)) if wanted else set()
