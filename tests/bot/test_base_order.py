"""Base candidates in order on small real trees: base-commit, subject tags, the trees the
base tree's own MAINTAINERS names for the touched files, the list's branches, then the
configured fallbacks; each try recorded."""

from __future__ import annotations

from pathlib import Path

from bot.core.runner import Runner
from bot.trees.apply import apply_series
from bot.trees.repo import Repo, acquire_slot
from config.settings import Settings, load_settings
from tests.support.gitrepo import SmallRepo, git, series_from_mails

OTHER_URL = "https://git.example.org/pub/scm/other.git"
MAINTAINERS = f"""\
List of maintainers
===================

BETA
M:	Beta Maintainer <beta@example.org>
T:	git {OTHER_URL}
F:	mm/beta.c
"""


def _trees(tmp_path: Path) -> tuple[SmallRepo, SmallRepo, SmallRepo]:
    """The list's tree (with MAINTAINERS), the tree MAINTAINERS names, and a fallback."""
    up = SmallRepo(tmp_path / "up")
    up.commit("MAINTAINERS", {"MAINTAINERS": MAINTAINERS})
    other = SmallRepo(tmp_path / "other")
    other.commit("beta: other", {"mm/beta.c": other.edit("mm/beta.c", "return 0;", "return 9;")})
    nxt = SmallRepo(tmp_path / "next")
    nxt.commit("alpha: next", {"mm/alpha.c": nxt.edit("mm/alpha.c", "return 5;", "return 55;")})
    return up, other, nxt


def _settings(tmp_path: Path, up: Path, other: Path, nxt: Path) -> Settings:
    return load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[{"name": "test", "url": "http://127.0.0.1:1/test", "trees": ["up"]}],
        trees=[
            {"name": "up", "url": str(up)},
            {"name": "other", "url": str(other), "public_url": OTHER_URL},
            {"name": "next", "url": str(nxt)},
        ],
        base={"fallbacks": ["next/master"], "b4_guess": False},
    )


def _apply(settings: Settings, mails: list[bytes]) -> tuple[str, list[tuple[str, str, bool]]]:
    repo = Repo.open(settings, Runner(settings.paths.logs))
    for t in settings.trees:
        repo.sync(t)
    with acquire_slot(repo, settings.paths.cache, 1) as slot:
        r = apply_series(settings, repo, slot, series_from_mails(mails), settings.lists[0])
    return r.tree, [(a.how, a.tree, a.ok) for a in r.tried]


def test_maintainers_tree_comes_before_the_lists_branches(tmp_path: Path) -> None:
    up, other, nxt = _trees(tmp_path)
    base = other.head()
    settings = _settings(tmp_path, up.path, other.path, nxt.path)
    # a patch of other's beta.c (it would not apply on up's); other's master stays at base
    other.commit("beta: 10", {"mm/beta.c": other.edit("mm/beta.c", "return 9;", "return 10;")})
    mails = other.mails(base)
    git(other.path, "reset", "-q", "--hard", base)
    tree, tried = _apply(settings, mails)
    assert tree == "other"
    assert tried == [("maintainers", "other", True)]


def test_fallbacks_come_last(tmp_path: Path) -> None:
    up, other, nxt = _trees(tmp_path)
    settings = _settings(tmp_path, up.path, other.path, nxt.path)
    base = nxt.head()
    nxt.commit("alpha: 56", {"mm/alpha.c": nxt.edit("mm/alpha.c", "return 55;", "return 56;")})
    mails = nxt.mails(base)
    tree, tried = _apply(settings, mails)
    assert tree == "next"
    # alpha.c has no MAINTAINERS entry: the list's branch, then the fallback
    assert tried == [("branch", "up", False), ("fallback", "next", True)]
