"""MAINTAINERS read as get_maintainer.pl reads it: F:/X:/N: patterns, T: git trees mapped to
configured trees by URL; the real file of linux-source-6.12 routes files to their trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.trees.maintainers import parse_maintainers, pattern_matches, tree_hints, url_key
from config.settings import TreeSettings
from tests.support import kernel
from tests.support.gitserver import bare_git

TEXT = """\
List of maintainers
===================

	F: *Files* and directories wildcard patterns.

MEMORY MANAGEMENT
M:	Andrew Morton <akpm@linux-foundation.org>
T:	git git://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm
T:	quilt git://git.kernel.org/pub/scm/linux/kernel/git/akpm/25-new
F:	include/linux/mm_*.h
F:	mm/
X:	mm/secret/
N:	include/linux/page[-_]*

ZSWAP
M:	Someone <s@example.org>
F:	mm/zswap.c

TTY LAYER
T:	git https://git.kernel.org/pub/scm/linux/kernel/git/gregkh/tty.git tty-next
F:	drivers/tty/

THE REST
T:	git git://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git
F:	*
F:	*/
"""

TREES = [
    TreeSettings(
        name="mm",
        url="git://127.0.0.1:1/mm.git",
        public_url="https://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm.git",
    ),
]


def test_patterns_follow_get_maintainer() -> None:
    assert pattern_matches("mm/", "mm/a/b.c")
    assert pattern_matches("mm", "mm/a.c") and not pattern_matches("mm", "mmx/a.c")
    assert pattern_matches("include/linux/mm_*.h", "include/linux/mm_types.h")
    assert not pattern_matches("drivers/net/*", "drivers/net/wan/x.c")
    assert pattern_matches("*/net/*", "drivers/net/x.c")


def test_url_key_compares_places() -> None:
    assert url_key("git://git.kernel.org/pub/x/mm") == url_key(
        "https://GIT.kernel.org/pub/x/mm.git/"
    )
    assert url_key("/srv/mm.git") == "/srv/mm"


def test_hints_map_to_configured_trees_and_skip_the_catch_all() -> None:
    entries = parse_maintainers(TEXT)
    assert [e.title for e in entries] == ["MEMORY MANAGEMENT", "ZSWAP", "TTY LAYER", "THE REST"]
    hints = tree_hints(entries, ["mm/zswap.c"], TREES)
    assert [(h.entry, h.tree, h.branch) for h in hints] == [("MEMORY MANAGEMENT", "mm", "")]
    hints = tree_hints(entries, ["drivers/tty/n_tty.c", "mm/a.c", "drivers/tty/tty.h"], TREES)
    # the tree of most files first; the TTY tree is named with its branch, unconfigured
    assert [(h.entry, h.tree, h.branch, h.files) for h in hints] == [
        ("TTY LAYER", "", "tty-next", 2),
        ("MEMORY MANAGEMENT", "mm", "", 1),
    ]
    assert tree_hints(entries, ["mm/secret/x.c"], TREES) == []  # X: excludes
    assert [h.tree for h in tree_hints(entries, ["include/linux/page-flags.h"], TREES)] == ["mm"]
    assert tree_hints(entries, ["README"], TREES) == []  # only THE REST


@pytest.mark.kernel
def test_the_kernels_own_maintainers_routes_files(kernel_git_dir: Path) -> None:
    text = bare_git(kernel_git_dir, "show", f"{kernel.REF}:MAINTAINERS")
    trees = [
        *TREES,
        TreeSettings(
            name="tty",
            url="",
            public_url="https://git.kernel.org/pub/scm/linux/kernel/git/gregkh/tty.git",
        ),
    ]
    entries = parse_maintainers(text)
    assert [h.tree for h in tree_hints(entries, ["drivers/tty/tty_io.c"], trees)] == ["tty"]
    assert [h.tree for h in tree_hints(entries, ["mm/zswap.c"], trees)] == ["mm"]
    wireless = tree_hints(entries, ["net/wireless/core.c"], trees)
    assert wireless and all(h.tree == "" and "wireless" in h.url for h in wireless)
