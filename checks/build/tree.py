"""The tree at one revision, read with git through the runner (thin shell for `impact.Tree`).

Reading a revision through git objects is slow on a kernel tree: one `git grep
<rev> -- include/*.h` decompresses thousands of blobs (9 s here), once per patch.
A series' commits differ from the checked-out worktree in a few files only, so
the tree answers from the worktree's files for every path the revision has
unchanged, and from git objects for the few paths that differ. That is exact, not
a cache: the set of differing paths comes from git (`git diff --name-only`
between the revision and the worktree's HEAD, plus whatever is not committed).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path

from bot.core.git import Git
from bot.core.runner import Runner

_GLOB = frozenset("*?[")


def pathspec_match(path: str, spec: str) -> bool:
    """git's default pathspec semantics: a wildcard matches across `/` (fnmatch), and a
    plain spec matches the path itself or anything under it as a directory."""
    if any(c in _GLOB for c in spec):
        return fnmatch.fnmatchcase(path, spec)
    spec = spec.rstrip("/")
    return path == spec or path.startswith(spec + "/")


def uncommitted_paths(git: Git) -> frozenset[str] | None:
    """Paths of a worktree that differ from its HEAD (changed, staged or untracked);
    None when git cannot tell. One status over the tree: take it once per worktree state."""
    r = git.run("status", "--porcelain", "-z", "--untracked-files=all", name="git-status")
    if not r.ok:
        return None
    paths: set[str] = set()
    entries = iter(r.stdout.split("\0"))
    for e in entries:
        if len(e) > 3:
            paths.add(e[3:])
            if e[0] in "RC":  # a rename's source follows as its own entry
                paths.add(next(entries, ""))
    return frozenset(p for p in paths if p)


class GitTree:
    """`rev:path` reads and `git grep` at `rev`, answered from the worktree where the two
    agree; reads are cached.

    `grep_worktree` says the worktree is checked out at `rev` (every path agrees).
    """

    def __init__(
        self,
        runner: Runner,
        worktree: Path,
        rev: str,
        grep_worktree: bool = False,
        uncommitted: frozenset[str] | None = None,
    ):
        self.git = Git(runner, worktree=worktree)
        self.worktree = worktree
        self.rev = rev
        self.grep_worktree = grep_worktree
        self._files: dict[str, str | None] = {}
        self._differs: frozenset[str] | None = frozenset() if grep_worktree else None
        self._uncommitted = uncommitted

    def differing(self) -> frozenset[str]:
        """Paths whose content at `rev` may not be what the worktree holds (computed once:
        the worktree must not move while this tree is used)."""
        if self._differs is None:
            committed = self.git.run(
                "diff", "--no-renames", "--name-only", "-z", self.rev, "HEAD", name="git-diff"
            )
            local = self._uncommitted
            if local is None:
                local = uncommitted_paths(self.git)
            if not committed.ok or local is None:  # unknown: git objects for everything
                self._differs = frozenset({""})
            else:
                self._differs = frozenset(p for p in committed.stdout.split("\0") if p) | local
        return self._differs

    def _all_differ(self) -> bool:
        return "" in self.differing()

    def read(self, path: str) -> str | None:
        if path not in self._files:
            self._files[path] = self._read(path)
        return self._files[path]

    def _read(self, path: str) -> str | None:
        if not self._all_differ() and path not in self.differing():
            f = self.worktree / path
            if f.is_file() and not f.is_symlink():
                return f.read_bytes().decode("utf-8", "replace")
            if not f.exists() and not f.is_symlink():
                return None
        r = self.git.run("show", f"{self.rev}:{path}", timeout=60, name="git-show")
        return r.stdout if r.ok else None

    def grep(
        self,
        patterns: Sequence[str],
        paths: Sequence[str],
        *,
        word: bool = False,
        fixed: bool = False,
        files_only: bool = False,
    ) -> list[tuple[str, int, str]]:
        if self.grep_worktree:
            return self._grep(patterns, paths, None, word, fixed, files_only)
        if self._all_differ():
            return self._grep(patterns, paths, self.rev, word, fixed, files_only)
        differs = self.differing()
        hits = self._grep(patterns, paths, None, word, fixed, files_only)
        hits = [h for h in hits if h[0] not in differs]
        at_rev = sorted(p for p in differs if any(pathspec_match(p, s) for s in paths))
        if at_rev:
            hits += self._grep(patterns, at_rev, self.rev, word, fixed, files_only)
        return sorted(hits, key=lambda h: (h[0], h[1]))

    def _grep(
        self,
        patterns: Sequence[str],
        paths: Sequence[str],
        rev: str | None,
        word: bool,
        fixed: bool,
        files_only: bool,
    ) -> list[tuple[str, int, str]]:
        """git grep in the worktree (`rev` None) or at `rev`: (path, line, text) hits."""
        argv = ["grep", "-I", "--no-color", "-F" if fixed else "-E"]
        argv += ["-w"] if word else []
        argv += ["-l"] if files_only else ["-n"]
        for p in patterns:
            argv += ["-e", p]
        argv += [*([] if rev is None else [rev]), "--", *paths]
        r = self.git.run(*argv, timeout=120, name="git-grep")
        hits: list[tuple[str, int, str]] = []
        prefix = "" if rev is None else f"{rev}:"
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
