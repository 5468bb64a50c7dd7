"""Pure parsing of unified diffs (`git show` / `git format-patch` output)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)")
C_SUFFIXES = (".c", ".h")


@dataclass
class FileDiff:
    """The changes a diff makes to one file (paths None when added/deleted)."""

    old_path: str | None
    new_path: str | None
    added: dict[int, str] = field(default_factory=dict)  # new line number -> text
    removed: dict[int, str] = field(default_factory=dict)  # old line number -> text

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    @property
    def is_c(self) -> bool:
        return self.path.endswith(C_SUFFIXES)


def parse_diff(diff: str) -> list[FileDiff]:
    """Files, added and removed lines of a unified diff."""
    files: list[FileDiff] = []
    cur: FileDiff | None = None
    old_no = new_no = old_left = new_left = 0
    in_hunk = False
    for line in diff.splitlines():
        m = _DIFF_GIT.match(line)
        if m:
            cur = FileDiff(m.group(1), m.group(2))
            files.append(cur)
            in_hunk = False
            continue
        if cur is None:
            continue
        if not in_hunk:
            if line.startswith("--- "):
                cur.old_path = None if line[4:] == "/dev/null" else line[6:]
            elif line.startswith("+++ "):
                cur.new_path = None if line[4:] == "/dev/null" else line[6:]
        h = _HUNK.match(line)
        if h:
            old_no, new_no, in_hunk = int(h.group(1)), int(h.group(3)), True
            old_left = int(h.group(2) or 1)
            new_left = int(h.group(4) or 1)
            continue
        if not in_hunk:
            continue
        if old_left <= 0 and new_left <= 0:
            in_hunk = False
            continue
        if line.startswith("+"):
            cur.added[new_no] = line[1:]
            new_no += 1
            new_left -= 1
        elif line.startswith("-"):
            cur.removed[old_no] = line[1:]
            old_no += 1
            old_left -= 1
        elif line.startswith(" ") or line == "":
            old_no += 1
            new_no += 1
            old_left -= 1
            new_left -= 1
        elif line.startswith("\\"):
            continue
        else:
            in_hunk = False
    return files
