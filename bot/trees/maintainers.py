"""The kernel's MAINTAINERS file: which git trees (`T: git`) take the files a series touches.

Parsed as `scripts/get_maintainer.pl` reads it: `F:` globs (a trailing `/` takes
everything below, a `*` stays in its directory), `X:` exclusions first, `N:`
regexes. The catch-all entry ("THE REST": `F: *`) names mainline for every file;
it is not a hint about where a series goes, so it is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

from config.settings import TreeSettings


@dataclass
class Entry:
    """One MAINTAINERS section."""

    title: str
    files: list[str] = field(default_factory=list)  # F:
    excluded: list[str] = field(default_factory=list)  # X:
    regexes: list[str] = field(default_factory=list)  # N:
    git: list[tuple[str, str]] = field(default_factory=list)  # T: git (url, branch)

    @property
    def catch_all(self) -> bool:
        return any(p in ("*", "*/") for p in self.files)


def parse_maintainers(text: str) -> list[Entry]:
    """The entries of a MAINTAINERS file (the text before the first entry is skipped)."""
    entries: list[Entry] = []
    current: Entry | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        m = re.match(r"^([A-Z]):\s*(.*)$", line)
        if m and current is not None:
            tag, value = m.group(1), m.group(2).strip()
            if tag == "F":
                current.files.append(value)
            elif tag == "X":
                current.excluded.append(value)
            elif tag == "N":
                current.regexes.append(value)
            elif tag == "T":
                words = value.split()
                if len(words) >= 2 and words[0] == "git":
                    current.git.append((words[1], words[2] if len(words) > 2 else ""))
            continue
        if not line:
            current = None
            continue
        if current is None and not m and not line.startswith((" ", "\t")):
            current = Entry(line)
            entries.append(current)
    return [e for e in entries if e.files or e.regexes]


def pattern_matches(pattern: str, path: str) -> bool:
    """get_maintainer.pl's file_match_pattern."""
    if pattern.endswith("/"):
        return path.startswith(pattern)
    if not any(c in pattern for c in "*?["):
        return path == pattern or path.startswith(pattern + "/")
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return bool(re.match(regex, path)) and path.count("/") == pattern.count("/")


def _match_len(entry: Entry, path: str) -> int:
    """How specific the entry's best match of `path` is (0: it does not match)."""
    if any(pattern_matches(x, path) for x in entry.excluded):
        return 0
    best = max((len(p) for p in entry.files if pattern_matches(p, path)), default=0)
    if not best and any(_search(r, path) for r in entry.regexes):
        best = 1
    return best


def _search(regex: str, path: str) -> bool:
    try:
        return bool(re.search(regex, path))
    except re.error:
        return False


def url_key(url: str) -> str:
    """A git URL compared as a place: no scheme, user, `.git` or trailing slash; host in
    lower case (git://git.kernel.org/…/mm and https://git.kernel.org/…/mm.git are one)."""
    u = urlparse(url.strip())
    host = (u.hostname or "").lower()
    path = u.path if u.scheme else url.strip()
    path = path.rstrip("/").removesuffix(".git").rstrip("/")
    return f"{host}{path}" if u.scheme else path


@dataclass(frozen=True)
class TreeHint:
    """A `T: git` line of the entries that cover the series' files, and what it maps to."""

    url: str
    branch: str  # the branch the line names, "" when none
    entry: str  # the MAINTAINERS section's title
    files: int  # how many of the series' files the entry covers
    tree: str = ""  # the configured tree with that URL, "" when none is


def tree_hints(entries: list[Entry], paths: list[str], trees: list[TreeSettings]) -> list[TreeHint]:
    """The `T: git` trees of the entries covering `paths`, most files then most specific
    first, each mapped to the configured tree whose url or public_url is the same place."""
    by_url: dict[str, str] = {}
    for t in trees:
        for u in (t.url, t.public_url):
            if u:
                by_url.setdefault(url_key(u), t.name)
    scored: dict[tuple[str, str], tuple[int, int, str]] = {}
    for e in entries:
        if e.catch_all or not e.git:
            continue
        lens = [n for n in (_match_len(e, p) for p in paths) if n]
        if not lens:
            continue
        for url, branch in e.git:
            key = (url, branch)
            got = (len(lens), max(lens), e.title)
            if key not in scored or got[:2] > scored[key][:2]:
                scored[key] = got
    order = sorted(scored.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    out, seen = [], set()
    for (url, branch), (files, _, title) in order:
        k = (url_key(url), branch)
        if k in seen:
            continue
        seen.add(k)
        out.append(TreeHint(url, branch, title, files, by_url.get(url_key(url), "")))
    return out
