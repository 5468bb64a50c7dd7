"""The tree at one revision, read with git through the runner (thin shell for `impact.Tree`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.core.git import Git
from bot.core.runner import Runner


class GitTree:
    """`git show rev:path` and `git grep rev` in a worktree; reads are cached.

    `grep_worktree` greps the checked-out files instead (faster: threaded and
    no object decompression); only right when the worktree is at `rev`.
    """

    def __init__(self, runner: Runner, worktree: Path, rev: str, grep_worktree: bool = False):
        self.git = Git(runner, worktree=worktree)
        self.worktree = worktree
        self.rev = rev
        self.grep_worktree = grep_worktree
        self._files: dict[str, str | None] = {}

    def read(self, path: str) -> str | None:
        if path not in self._files:
            r = self.git.run("show", f"{self.rev}:{path}", timeout=60, name="git-show")
            self._files[path] = r.stdout if r.ok else None
        return self._files[path]

    def grep(
        self,
        patterns: Sequence[str],
        paths: Sequence[str],
        *,
        word: bool = False,
        fixed: bool = False,
        files_only: bool = False,
    ) -> list[tuple[str, int, str]]:
        argv = ["grep", "-I", "--no-color", "-F" if fixed else "-E"]
        argv += ["-w"] if word else []
        argv += ["-l"] if files_only else ["-n"]
        for p in patterns:
            argv += ["-e", p]
        argv += [*([] if self.grep_worktree else [self.rev]), "--", *paths]
        r = self.git.run(*argv, timeout=120, name="git-grep")
        hits: list[tuple[str, int, str]] = []
        prefix = "" if self.grep_worktree else f"{self.rev}:"
        for line in r.stdout.splitlines():
            line = line.removeprefix(prefix)
            if files_only:
                hits.append((line, 0, ""))
                continue
            path, _, rest = line.partition(":")
            num, _, text = rest.partition(":")
            if num.isdigit():
                hits.append((path, int(num), text))
        return hits
