"""The one unified-diff parser (git's format), its hunk finder, and the excerpt format.

Every stage that reads a diff (patch safety, the build check's impact
analysis, the semantic check, kernel-doc, checkpatch's line mapping) reads it
here, with one rule for paths: the `---`/`+++` lines when the file has hunks,
the `diff --git` line otherwise; `/dev/null` is no path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DIFF_GIT = re.compile(r'^diff --git (?:"?a/(.+?)"?) (?:"?b/(.+?)"?)$')
C_SUFFIXES = (".c", ".h")


def _unquote(path: str) -> str:
    """A path as git prints it (C-quoted when it has special characters), plain."""
    if path.startswith('"') and path.endswith('"'):
        path = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return path


def _side(header: str, prefix: str) -> str | None:
    """The path of a `--- a/x` / `+++ b/x` line; None for /dev/null."""
    path = _unquote(header[4:].split("\t", 1)[0].rstrip())
    if path == "/dev/null":
        return None
    return path.removeprefix(prefix)


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    text: str  # the hunk as it is in the diff, from its @@ line

    @property
    def new_lines(self) -> range:
        """New-side line numbers the hunk spans (at least its first line)."""
        return range(self.new_start, self.new_start + max(self.new_count, 1))


@dataclass(frozen=True)
class FileDiff:
    """What a diff does to one file: paths (None when created or deleted), lines, hunks."""

    old_path: str | None
    new_path: str | None
    added: tuple[tuple[int, str], ...] = ()  # (new line number, text)
    removed: tuple[tuple[int, str], ...] = ()  # (old line number, text)
    hunks: tuple[Hunk, ...] = ()

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    @property
    def deleted(self) -> bool:
        return self.new_path is None

    @property
    def is_c(self) -> bool:
        return self.path.endswith(C_SUFFIXES)

    @property
    def added_lines(self) -> dict[int, str]:
        return dict(self.added)

    @property
    def removed_lines(self) -> dict[int, str]:
        return dict(self.removed)


class _File:
    """A file being read (mutable while parsing)."""

    def __init__(self, old: str | None, new: str | None):
        self.old, self.new = old, new
        self.added: list[tuple[int, str]] = []
        self.removed: list[tuple[int, str]] = []
        self.hunks: list[Hunk] = []
        self.hunk_lines: list[str] = []
        self.head: tuple[int, int, int, int] | None = None

    def close_hunk(self) -> None:
        if self.head is not None:
            self.hunks.append(Hunk(*self.head, "\n".join(self.hunk_lines)))
        self.head, self.hunk_lines = None, []

    def done(self) -> FileDiff:
        self.close_hunk()
        return FileDiff(
            self.old, self.new, tuple(self.added), tuple(self.removed), tuple(self.hunks)
        )


def parse_diff(diff: str) -> list[FileDiff]:
    """The files of a unified diff, with added/removed lines (numbered) and hunks."""
    files: list[FileDiff] = []
    cur: _File | None = None
    old_no = new_no = old_left = new_left = 0
    for line in diff.splitlines():
        in_hunk = cur is not None and cur.head is not None and (old_left > 0 or new_left > 0)
        if in_hunk and cur is not None:
            if line.startswith("+"):
                cur.added.append((new_no, line[1:]))
                new_no, new_left = new_no + 1, new_left - 1
            elif line.startswith("-"):
                cur.removed.append((old_no, line[1:]))
                old_no, old_left = old_no + 1, old_left - 1
            elif line.startswith(" ") or line == "":
                old_no, new_no = old_no + 1, new_no + 1
                old_left, new_left = old_left - 1, new_left - 1
            elif not line.startswith("\\"):
                in_hunk = False
            if in_hunk:
                cur.hunk_lines.append(line)
                continue
        if cur is not None and line.startswith("\\"):
            cur.hunk_lines.append(line)  # "\ No newline at end of file" after the last line
            continue
        if m := _DIFF_GIT.match(line):
            if cur is not None:
                files.append(cur.done())
            cur = _File(_unquote(m[1]), _unquote(m[2]))
        elif cur is None:
            continue
        elif line.startswith("--- ") and cur.head is None and not cur.hunks:
            cur.old = _side(line, "a/")
        elif line.startswith("+++ ") and cur.head is None and not cur.hunks:
            cur.new = _side(line, "b/")
        elif line.startswith(("new file mode", "deleted file mode")):
            if line.startswith("new"):
                cur.old = None
            else:
                cur.new = None
        elif h := HUNK.match(line):
            cur.close_hunk()
            old_no, new_no = int(h[1]), int(h[3])
            old_left = int(h[2]) if h[2] is not None else 1
            new_left = int(h[4]) if h[4] is not None else 1
            cur.head = (old_no, old_left, new_no, new_left)
            cur.hunk_lines = [line]
    if cur is not None:
        files.append(cur.done())
    return files


def find_hunk(diff: str, path: str, old_line: int | None) -> str:
    """The hunk of `path` that starts at old line `old_line` (else its first hunk), or ""."""
    for f in parse_diff(diff):
        if path not in (f.new_path, f.old_path) or not f.hunks:
            continue
        for h in f.hunks:
            if old_line is None or h.old_start == old_line:
                return h.text[:4000]
        return f.hunks[0].text[:4000]
    return ""


def excerpt(lines: Sequence[str], line: int, context: int = 2) -> str:
    """Numbered source lines around `line` (1-based), the line itself marked with '>'.

    The one format of every excerpt lorebot shows (0-day's): `> 551<TAB>code`.
    """
    lo, hi = max(1, line - context), min(len(lines), line + context)
    width = len(str(hi))
    return "\n".join(
        f"{'>' if n == line else ' '} {n:>{width}}\t{lines[n - 1].rstrip()}"
        for n in range(lo, hi + 1)
    )
