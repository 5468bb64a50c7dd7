"""`#lorebot` commands by mail, through a real public-inbox, real SMTP and real builds of
the fast fake tree: an author marks a finding invalid, asks for a re-test, a stranger
is ignored, the same mail is taken once, and the re-roll is not mailed about it."""

from __future__ import annotations

import shutil
from email import message_from_bytes
from email.message import Message
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.core.runner import Runner
from bot.demo.series import MailedSeries, write_series
from bot.intake.commands import parse_commands, pick_items
from bot.intake.poll import poll_once
from bot.run import queue
from bot.run.delivery import Mailer
from bot.run.worker import run_series
from bot.trees.repo import Repo
from bot.web.app import create_app
from config.settings import Settings, load_settings
from state.db import Database
from state.models import CommandRow, SeriesRow, utcnow
from tests.support.fakelinux import fake_tree
from tests.support.fakeseries import PATCHES
from tests.support.kernel import git
from tests.support.pi import PublicInboxServer
from tests.support.smtpd import SmtpServer

AUTHOR = "Dev Eloper <dev@example.org>"


def test_parse_commands_takes_unquoted_lines_with_the_quote_above() -> None:
    body = (
        "On Mon, lorebot wrote:\n> Hi,\n>\n> mm/core.c:9: error: implicit declaration\n"
        ">   of foo_missing\n\n#lorebot invalid not a bug: covered by foo.h\n"
        "> #lorebot retest\n#lorebot   MUTE\n-- \n#lorebot retest\n"
    )
    cmds = parse_commands(body)
    assert [(c.word, c.argument) for c in cmds] == [
        ("invalid", "not a bug: covered by foo.h"),
        ("mute", ""),
    ]
    assert cmds[0].quote.splitlines()[-2:] == [
        "mm/core.c:9: error: implicit declaration",
        "  of foo_missing",
    ]
    items = [
        {"fingerprints": ["a"], "text": "1. Build error in mm/core.c:9\n\n  of foo_missing"},
        {"fingerprints": ["b"], "text": "2. Build warning in mm/bar.c:3\n\n  unused x"},
    ]
    assert pick_items(items, "unused x") == [items[1]]
    assert pick_items(items, "Hi,") == items  # nothing of an item quoted: all of them
    assert pick_items(items, "Build") == items  # as much of each: both


def _settings(tmp_path: Path, pi: PublicInboxServer, smtp: SmtpServer, upstream: Path) -> Settings:
    return load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[{"name": pi.name, "url": pi.url, "address": pi.address, "trees": ["fake"]}],
        trees=[{"name": "fake", "url": str(upstream), "branches": ["master"]}],
        checks={"enabled": ["build"]},
        build={"arches": ["x86_64"]},
        mail={
            "mode": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "sender": "lorebot <lorebot@example.org>",
        },
        web={"base_url": "http://lorebot.test"},
        commands={"admins": ["maint@example.org"]},
    )


def _run_queued(settings: Settings, db: Database) -> int:
    """Run every queued series, then deliver; the number of runs."""
    runs = 0
    while (sid := queue.claim_next(db, "test-worker")) is not None:
        run_series(settings, db, sid, "test-worker")
        runs += 1
    Mailer(settings, db).deliver_pending()
    return runs


def _answer(to: Message, sender: str, pi: PublicInboxServer, text: str, msgid: str = "") -> bytes:
    """A reply to lorebot's mail `to` from `sender`, Cc the list, with `text` below."""
    msgid = msgid or make_msgid(domain="reader.example.org")
    return (
        f"From: {sender}\nTo: {to['From']}\nCc: {pi.address}\n"
        f"Subject: Re: {to['Subject'].removeprefix('Re: ')}\n"
        f"Date: {format_datetime(utcnow().astimezone())}\nMessage-ID: {msgid}\n"
        f"In-Reply-To: {to['Message-ID']}\nReferences: {to['Message-ID']}\n"
        f"Content-Type: text/plain; charset=utf-8\n\n{text}"
    ).encode()


def _series(db: Database) -> dict[str, SeriesRow]:
    with db.session() as s:
        return {r.msgid: r for r in s.scalars(select(SeriesRow))}


def _commands(db: Database) -> list[CommandRow]:
    with db.session() as s:
        return list(s.scalars(select(CommandRow).order_by(CommandRow.id)))


def _post_version(upstream: Path, pi: PublicInboxServer, version: int) -> MailedSeries:
    git(upstream, "checkout", "-q", "master")
    git(upstream, "checkout", "-qB", f"v{version}")
    mailed = write_series(
        upstream,
        list(PATCHES),
        list_address=pi.address,
        cover_subject="mm/core: two small changes",
        version=version,
        msgid_domain=f"v{version}.example.org",
    )
    git(upstream, "checkout", "-q", "master")
    pi.post_many(mailed.mails)
    return mailed


def _first_reply(
    tmp_path: Path, pi: PublicInboxServer, smtp: SmtpServer
) -> tuple[Settings, Database, Path, MailedSeries, Message]:
    """v1 posted, taken in, checked: lorebot's one reply (to the patch that breaks)."""
    upstream = fake_tree(tmp_path / "upstream")
    settings = _settings(tmp_path, pi, smtp, upstream)
    Repo.open(settings, Runner(settings.paths.logs)).sync(settings.tree("fake"))
    db = Database(settings.database_url)
    v1 = _post_version(upstream, pi, 1)
    poll_once(settings, db)
    assert _run_queued(settings, db) == 1
    (got,) = smtp.received
    return settings, db, upstream, v1, message_from_bytes(got.content)


NEEDS_GCC = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gcc", "make")), reason="needs gcc and make"
)


@NEEDS_GCC
def test_commands_by_mail_invalid_retest_stranger_and_reroll(
    tmp_path: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer
) -> None:
    settings, db, upstream, v1, mail = _first_reply(tmp_path, pi_server, smtp_server)
    body = mail.get_payload(decode=True).decode()
    assert mail["In-Reply-To"] == f"<{v1.msgids[2]}>" and "foo_missing" in body
    assert 'Reply "#lorebot invalid <why>" under an item' in body.splitlines()[-1]

    # the author quotes the diagnostic and marks it invalid
    diag = next(ln for ln in body.splitlines() if "foo_missing" in ln)
    invalid_mid = "<invalid-1@dev.example.org>"
    text = f"Hi,\n\n> {diag}\n\n#lorebot invalid not a bug: covered by foo.h\n\nDev\n"
    pi_server.post(_answer(mail, AUTHOR, pi_server, text, invalid_mid))
    # a stranger's command is recorded and ignored
    pi_server.post(_answer(mail, "Mallory <mallory@evil.example>", pi_server, "#lorebot retest\n"))
    poll_once(settings, db)
    cmds = _commands(db)
    assert [(c.command, c.state, c.sender) for c in cmds] == [
        ("invalid", "applied", "dev@example.org"),
        ("retest", "ignored", "mallory@evil.example"),
    ]
    assert cmds[0].fingerprints and cmds[0].argument == "not a bug: covered by foo.h"
    assert "not the author" in cmds[1].reason
    assert _series(db)[v1.msgids[0]].state == "done"  # the stranger re-tested nothing

    # the author asks for a re-test: queued once, run, and the invalid item is not mailed
    retest = _answer(mail, AUTHOR, pi_server, "#lorebot retest\n", "<retest-1@dev.example.org>")
    pi_server.post(retest)
    poll_once(settings, db)
    assert _series(db)[v1.msgids[0]].state == "queued"
    assert _run_queued(settings, db) == 1
    assert len(smtp_server.received) == 1
    # the same command mail again (a duplicate in the archive): not run twice
    pi_server.post_raw_commit(retest)
    poll_once(settings, db)
    assert _series(db)[v1.msgids[0]].state == "done"
    assert [c.msgid for c in _commands(db)].count("retest-1@dev.example.org") == 1
    # a second re-test within the interval is refused by the rate limit
    pi_server.post(_answer(mail, AUTHOR, pi_server, "#lorebot retest\n"))
    poll_once(settings, db)
    assert _commands(db)[-1].state == "ignored" and "rate limit" in _commands(db)[-1].reason
    assert _run_queued(settings, db) == 0

    # the v2 re-roll has the same finding: no mail about it, the page shows it marked
    v2 = _post_version(upstream, pi_server, 2)
    poll_once(settings, db)
    rows = _series(db)
    assert rows[v1.msgids[0]].superseded_by == rows[v2.msgids[0]].id
    assert _run_queued(settings, db) == 1
    assert len(smtp_server.received) == 1
    client = TestClient(create_app(settings, db))
    detail = client.get(f"/api/series/{v2.msgids[0]}").json()
    (finding,) = [f for f in detail["runs"][0]["findings"] if "foo_missing" in f["message"]]
    assert finding["fingerprint"] in cmds[0].fingerprints
    assert finding["invalid"]["reason"] == "not a bug: covered by foo.h"
    assert finding["invalid"]["by"] == AUTHOR
    page = client.get(f"/series/{v2.msgids[0]}").text
    assert (
        "Marked invalid by Dev Eloper &lt;dev@example.org&gt;: not a bug: covered by foo.h" in page
    )
    assert "<del>" in page and "#lorebot retest" in page
    assert f"{pi_server.url}/invalid-1@dev.example.org/" in page  # the command's lore URL
    metrics = client.get("/metrics").text
    assert 'lorebot_commands_total{command="invalid",state="applied"} 1' in metrics
    assert 'lorebot_commands_total{command="retest",state="applied"} 1' in metrics
    assert 'lorebot_commands_total{command="retest",state="ignored"} 2' in metrics
    db.dispose()


@NEEDS_GCC
def test_mute_stops_mail_to_the_sender_and_unmute_restores_it(
    tmp_path: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer
) -> None:
    """Mute by mail: the author's next reply is dropped; unmute: mailed again."""
    settings, db, upstream, _, mail = _first_reply(tmp_path, pi_server, smtp_server)
    pi_server.post(_answer(mail, AUTHOR, pi_server, "#lorebot mute\n"))
    poll_once(settings, db)
    assert [(c.command, c.state) for c in _commands(db)] == [("mute", "applied")]
    _post_version(upstream, pi_server, 2)
    poll_once(settings, db)
    _run_queued(settings, db)
    assert len(smtp_server.received) == 1
    replies = TestClient(create_app(settings, db)).get("/api/series").json()
    v2 = replies[0]["msgid"]
    detail = TestClient(create_app(settings, db)).get(f"/api/series/{v2}").json()
    assert [r["state"] for r in detail["replies"]] == ["dropped"]
    assert "dev@example.org asked not to be mailed" in detail["replies"][0]["reason"]
    pi_server.post(_answer(mail, AUTHOR, pi_server, "#lorebot unmute\n"))
    poll_once(settings, db)
    assert _commands(db)[-1].state == "applied"
    _post_version(upstream, pi_server, 3)
    poll_once(settings, db)
    _run_queued(settings, db)
    assert len(smtp_server.received) == 2
    db.dispose()
