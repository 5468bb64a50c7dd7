"""Series assembly through b4 and the `lorebot series` / `lorebot poll` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main as cli
from bot.core.runner import Runner
from bot.intake.b4adapter import guess_base, preimage_blobs
from bot.intake.series import followup_body, load_series, series_key
from bot.trees.repo import Repo
from tests.support.mailgen import MailGen, msgid_of
from tests.support.pi import PublicInboxServer, intake_settings, write_config


@pytest.fixture
def gen(tmp_path: Path) -> MailGen:
    return MailGen(tmp_path / "gen")


def test_load_series_revisions_trailers_followup(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen
) -> None:
    v1 = gen.series("mm: add foo", 3, prefix="PATCH mm-unstable")
    review = gen.trailer_reply(v1[2])
    v2 = gen.series("mm: add foo", 3, version=2, in_reply_to=msgid_of(v1[0]))
    follow = gen.followup(v2[2], title="mm: fix foo on top")
    partial = gen.series("mm: partial", 3)
    mangled = [
        m.replace(
            b"From: Ann Author <ann@example.org>",
            b"From: Ann Author via Test <test@lists.example.org>\n"
            b"X-Original-From: Ann Author <ann@example.org>",
        )
        for m in gen.series("dmarc: mangled", 1, cover=False)
    ]
    pi_server.post_many([*v1, review, *v2, follow, *partial[:2], *mangled])
    settings = intake_settings(tmp_path, pi_server)
    lst = settings.lists[0]

    s1 = load_series(settings, lst, msgid_of(v1[2]))  # any patch finds its revision
    assert (s1.version, s1.total, s1.complete, s1.cover) == (1, 3, True, msgid_of(v1[0]))
    assert s1.subject_tags == ("mm-unstable",)
    assert s1.base_commit == gen.base
    assert [p.msgid for p in s1.patches] == [msgid_of(m) for m in v1[1:]]
    assert s1.patches[1].trailers == ("Reviewed-by: Rob Reviewer <rob@example.org>",)
    assert b"Reviewed-by: Rob Reviewer" in s1.patches[1].mbox  # am-ready, trailer added
    assert s1.patches[0].references == (msgid_of(v1[0]), msgid_of(v1[1]))
    assert s1.patches[0].to == ("test@lists.example.org",)

    s2 = load_series(settings, lst, msgid_of(v2[0]))
    assert (s2.version, s2.msgid, s2.parent) == (2, msgid_of(v2[0]), None)
    assert series_key(s1) == series_key(s2) == "ann@example.org|mm: add foo"

    fu = load_series(settings, lst, msgid_of(follow))
    assert fu.parent == msgid_of(v2[0])
    assert [p.msgid for p in fu.patches] == [msgid_of(follow)]
    assert b"Subject: [PATCH] mm: fix foo on top" in fu.patches[0].mbox
    assert b"diff --git" in fu.patches[0].mbox and b"> something" not in fu.patches[0].mbox

    dm = load_series(settings, lst, msgid_of(mangled[0]))
    assert (dm.author, dm.author_email) == ("Ann Author <ann@example.org>", "ann@example.org")
    assert b"From: Ann Author <ann@example.org>" in dm.patches[0].mbox

    inc = load_series(settings, lst, msgid_of(partial[1]))
    assert (inc.complete, inc.missing, len(inc.patches)) == (False, (2, 3), 1)


def test_cli_series_json_and_poll(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = gen.series("net: add bar", 2)
    follow = gen.followup(v1[1])
    pi_server.post_many([*v1, follow])
    config = write_config(tmp_path / "lorebot.toml", tmp_path, pi_server, incomplete_timeout=60)

    url = f"{pi_server.url}/{msgid_of(v1[1])}/"
    assert cli.main(["--config", str(config), "series", "--json", url]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "msgid": msgid_of(v1[0]),
        "subject": "[PATCH 0/2] net: add bar",
        "version": 1,
        "complete": True,
        "cover": msgid_of(v1[0]),
        "base_commit": gen.base,
        "parent": None,
        "patches": [
            {
                "index": i,
                "msgid": msgid_of(v1[i]),
                "subject": f"[PATCH {i}/2] net: add bar: part {i}",
            }
            for i in (1, 2)
        ],
    }
    assert (
        cli.main(
            ["--config", str(config), "series", "--json", "--list", "test", f"<{msgid_of(follow)}>"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["parent"] == msgid_of(v1[0]) and len(out["patches"]) == 1
    assert cli.main(["--config", str(config), "series", msgid_of(v1[0])]) == 0
    assert "base-commit: " + gen.base in capsys.readouterr().out
    assert cli.main(["--config", str(config), "series", "no-such@id"]) == 1

    assert cli.main(["--config", str(config), "poll", "--once", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["new_messages"] == 4
    assert report["lists"][0]["kinds"] == {"cover": 1, "patch": 2, "followup": 1}
    assert report["lists"][0]["series"] == {"queued": 2}
    assert cli.main(["--config", str(config), "poll", "--once"]) == 0
    assert "test: 0 new message(s)" in capsys.readouterr().out


def test_guess_base_from_blobs(tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen) -> None:
    gen._commit("README", "moved on\n", "later", "Ann Author <ann@example.org>")
    series = gen.series("lib: rename", 2, edit_lib=True)
    pi_server.post_many(series)
    settings = intake_settings(tmp_path, pi_server)
    s = load_series(settings, settings.lists[0], msgid_of(series[0]))
    assert set(preimage_blobs(s)) == {"lib.c"}
    repo = Repo(tmp_path / "kernel.git", Runner())
    repo.ensure()
    repo.git("fetch", "-q", str(gen.repo), "master:refs/trees/t/master")
    # master moved on after the base; lib.c is unchanged, so the tip itself fits
    tip = repo.git("rev-parse", "refs/trees/t/master").strip()
    assert guess_base(s, repo) == ("t", "master", tip)


def test_followup_body_cuts_quotes_and_scissors() -> None:
    body = "On Mon, A wrote:\n> quoted\n\nTry this:\n-- >8 --\nSubject: x\n\nfix\n---\ndiff"
    assert followup_body(body) == "Subject: x\n\nfix\n---\ndiff"
    plain = "On Mon, A wrote:\n> quoted\n\nfix it\n---\ndiff --git a/x b/x\n"
    assert followup_body(plain) == "fix it\n---\ndiff --git a/x b/x\n"
