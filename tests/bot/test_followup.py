"""A follow-up patch ("on top of" a series) is checked against the parent's head: only
what it introduces is found, and it is answered in one reply to the follow-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.models import Series
from bot.core.runner import Runner
from bot.demo.series import DemoPatch, Edit, write_series
from bot.intake.series import load_target
from bot.run.pipeline import check_series
from bot.run.worker import draft_replies
from bot.trees.repo import Repo
from config.settings import load_settings
from tests.support.fakelinux import fake_tree
from tests.support.gitrepo import SmallRepo, git, series_from_mails, small_tree_settings, synced
from tests.support.mailgen import inline_followup
from tests.support.pi import PublicInboxServer

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


def _reproduce_block(body: str) -> list[str]:
    """The command lines under "To reproduce ...:" in a mail."""
    paragraphs = body.split("\n\n")
    at = next(i for i, p in enumerate(paragraphs) if p.startswith("To reproduce"))
    return paragraphs[at + 1].splitlines()


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gcc", "ccache", "make")),
    reason="needs gcc, ccache and make",
)
def test_follow_up_reproduced_from_its_own_mail(
    tmp_path: Path, pi_server: PublicInboxServer
) -> None:
    """The reproduce lines mailed to a follow-up, pasted into an empty repository with a
    real b4 reading the same public-inbox, rebuild what was tested: the parent series,
    the follow-up on top, and the follow-up's build error."""
    upstream = fake_tree(tmp_path / "upstream")
    git(upstream, "checkout", "-qb", "topic")
    parent_mail = write_series(
        upstream,
        [
            DemoPatch(
                "mm/core: reword a comment",
                "Say where the spare variable comes from.",
                (Edit("mm/core.c", "part of the base", "kept in the base"),),
            ),
            DemoPatch(
                "mm/core: name the count in core_setup()",
                "Give the count a name before it grows.",
                (
                    Edit(
                        "mm/core.c",
                        "\treturn foo_count();\n}\n\nint core_total",
                        "\tint n = foo_count();\n\n\treturn n;\n}\n\nint core_total",
                    ),
                ),
            ),
        ],
        list_address=pi_server.address,
        cover_subject="mm/core: two small changes",
        msgid_domain="parent.example.org",
    )
    follow_commit = write_series(
        upstream,
        [
            DemoPatch(
                "mm/core: count the first foo in core_setup()",
                "The first foo is in use from the start.",
                (
                    Edit(
                        "mm/core.c",
                        "\tint n = foo_count();\n",
                        "\tint n = foo_get(0) + foo_count();\n",
                    ),
                ),
            )
        ],
        list_address=pi_server.address,
        msgid_domain="follow.example.org",
    )
    git(upstream, "checkout", "-q", "master")
    followup_id = "followup-1@reviewer.example.org"
    pi_server.post_many(
        [
            *parent_mail.mails,
            inline_followup(parent_mail.mails[2], follow_commit.mails[0], followup_id),
        ]
    )
    settings = load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[
            {
                "name": pi_server.name,
                "url": pi_server.url,
                "address": pi_server.address,
                "trees": ["fake"],
            }
        ],
        trees=[
            {
                "name": "fake",
                "url": str(upstream),
                "branches": ["master"],
                "public_url": f"file://{upstream}",
            }
        ],
        checks={"enabled": ["build"]},
        build={"arches": ["x86_64"]},
    )
    Repo.open(settings, Runner(settings.paths.logs)).sync(settings.tree("fake"))

    lst, series, parent = load_target(settings, followup_id)
    assert parent is not None and parent.msgid == parent_mail.msgids[0]
    outcome = check_series(settings, series, lst, parent=parent, log_dir=tmp_path / "logs")
    assert outcome.applied.ok and not outcome.fault, outcome.applied.message
    (mail,) = draft_replies(settings, outcome)
    assert (mail.kind, mail.in_reply_to) == ("patch", followup_id)
    lines = _reproduce_block(mail.body)
    assert f"b4 shazam {parent_mail.msgids[0]}" in lines
    diagnostic = next(ln for ln in mail.body.splitlines() if ": error: " in ln)
    message = diagnostic.split(": error: ")[1].split(" [-W")[0]

    # pasted into an empty repository, by someone whose b4 reads the same archive
    home = tmp_path / "reader"
    repro = home / "linux"
    repro.mkdir(parents=True)
    (home / "gitconfig").write_text(
        f"[user]\n\tname = Rea Der\n\temail = reader@example.org\n"
        f"[b4]\n\tmidmask = {pi_server.url}/%s\n\tlinkmask = {pi_server.url}/%s\n"
        "\tattestation-policy = off\n"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
    }
    git(repro, "init", "-q")
    results = [
        subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=repro,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for line in lines
    ]
    for line, r in zip(lines[:-1], results[:-1], strict=True):
        assert r.returncode == 0, (line, r.stdout, r.stderr)
    assert results[-1].returncode != 0 and message in results[-1].stderr, results[-1].stderr

    # the tree built is the parent series with the follow-up on top, as tested
    def tree(repo: Path, rev: str) -> str:
        return git(repo, "rev-parse", f"{rev}^{{tree}}").strip()

    assert tree(repro, "HEAD~1") == tree(upstream, parent_mail.commits[-1])
    assert tree(repro, "HEAD") == tree(upstream, follow_commit.commits[-1])
    assert git(repro, "rev-list", "--count", f"{outcome.applied.base}..HEAD").strip() == "3"
