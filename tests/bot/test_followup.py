"""A follow-up patch ("on top of" a series) is checked against the parent's head: only
what it introduces is found, and it is answered in one reply to the follow-up."""

from __future__ import annotations

from pathlib import Path

from bot.core.models import Series
from bot.run.pipeline import check_series
from bot.run.worker import draft_replies
from tests.support.gitrepo import SmallRepo, git, series_from_mails, small_tree_settings, synced

HEADER = "struct counter {\n\tint hits;\n\tint misses;\n};\n"
USER = (
    '#include "counter.h"\n\nint hits(struct counter *c)\n{\n\treturn c->hits;\n}\n\n'
    "int misses(struct counter *c)\n{\n\treturn c->misses;\n}\n"
)


def test_follow_up_is_checked_on_top_of_its_parent(tmp_path: Path) -> None:
    work = SmallRepo(tmp_path / "work")
    work.commit("mm: counters", {"mm/counter.h": HEADER, "mm/counter.c": USER})
    base = work.head()
    git(work.path, "checkout", "-qb", "topic")
    work.commit("mm: drop hits", {"mm/counter.h": HEADER.replace("\tint hits;\n", "")})
    parent = series_from_mails(work.mails(base), base_commit=base)
    mid = work.head()
    work.commit("mm: drop misses too", {"mm/counter.h": "struct counter {\n};\n"})
    follow: Series = series_from_mails(work.mails(mid)).model_copy(
        update={
            "parent": parent.msgid,
            "msgid": "f1@example.org",
            "patches": tuple(
                p.model_copy(update={"msgid": "f1@example.org"})
                for p in series_from_mails(work.mails(mid)).patches
            ),
        }
    )
    settings = small_tree_settings(tmp_path, work.path, ["master"])
    settings = settings.model_copy(
        update={"checks": settings.checks.model_copy(update={"enabled": ["semantic"]})}
    )
    synced(settings)

    alone = check_series(settings, parent, settings.lists[0], log_dir=tmp_path / "l1")
    assert [(f.patch, "hits" in f.message) for f in alone.findings] == [(1, True)]

    outcome = check_series(
        settings, follow, settings.lists[0], parent=parent, log_dir=tmp_path / "l2"
    )
    assert outcome.applied.ok
    # only the follow-up's own problem: the parent's removed member is the parent's
    assert [(f.patch, "misses" in f.message) for f in outcome.findings] == [(1, True)]
    drafts = draft_replies(settings, outcome)
    assert [(d.kind, d.in_reply_to) for d in drafts] == [("patch", "f1@example.org")]
    assert "hits" not in drafts[0].body.split("To reproduce")[0]
