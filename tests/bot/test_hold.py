"""A fault of ours holds a series with its reason and retries it; it never reaches a mail.

Real public-inbox, git trees and the real pipeline; the checks are stand-ins so that
the fault can be switched on and off.
"""

from __future__ import annotations

import email
import mailbox
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.cli.main import main
from bot.core.results import CheckResult, Finding
from bot.core.states import SeriesState
from bot.run import claims, pipeline, queue
from bot.run.delivery import Mailer
from bot.run.worker import run_series
from bot.web import create_app
from config.settings import Settings, load_settings
from state.db import Database
from state.models import ReplyRow, SeriesRow, utcnow
from tests.support.gitrepo import SmallRepo
from tests.support.pi import PublicInboxServer


class StandIn:
    """A build check whose toolchain may be missing; it finds one error on patch 1."""

    name = "build"
    moves_head = False
    fault = "arm64: aarch64-linux-gnu-gcc not found"

    def run(self, ctx: Any) -> CheckResult:
        found = Finding(
            check="build",
            kind="error",
            severity="error",
            patch=1,
            file="mm/alpha.c",
            line=8,
            message="'x' undeclared",
            arch="x86_64",
            config="defconfig",
            title="build error",
        )
        return CheckResult.of([found], fault=self.fault)


def _setup(tmp_path: Path, pi_server: PublicInboxServer) -> tuple[Settings, Database, str, str]:
    work = SmallRepo(tmp_path / "work")
    base = work.head()
    work.commit("mm: alpha", {"mm/alpha.c": work.edit("mm/alpha.c", "return 1;", "return x;")})
    mails = work.mails(base, ("--thread",))
    pi_server.post_many(mails)
    msgid = str(email.message_from_bytes(mails[0])["Message-Id"]).strip("<>")
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{tmp_path / "cache"}"\n\n'
        f'[[lists]]\nname = "{pi_server.name}"\nurl = "{pi_server.url}"\n'
        f'address = "{pi_server.address}"\ntrees = ["small"]\n\n'
        f'[[trees]]\nname = "small"\nurl = "{work.path}"\nbranches = ["master"]\n\n'
        '[checks]\nenabled = ["build"]\n\n[service]\nhold_retry_seconds = 60\n'
    )
    assert main(["--config", str(cfg), "poll", "--once"]) == 0
    settings = load_settings(cfg)
    return settings, Database(settings.database_url), msgid, str(cfg)


def _run(settings: Settings, db: Database) -> int:
    worker = claims.holder_name("w0")
    sid = queue.claim_next(db, worker)
    assert sid is not None
    with claims.held(worker):
        run_series(settings, db, sid, worker)
    return sid


def _row(db: Database, sid: int) -> SeriesRow:
    with db.session() as s:
        row = s.get(SeriesRow, sid)
        assert row is not None
        s.expunge(row)
        return row


def _outbox(settings: Settings) -> list[str]:
    Mailer(settings, Database(settings.database_url)).deliver_pending()
    box = settings.paths.state / "outbox"
    return [str(m["Subject"]) for m in mailbox.Maildir(box)] if box.exists() else []


def test_a_missing_toolchain_holds_the_series_then_it_is_mailed_once(
    tmp_path: Path, pi_server: PublicInboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, db, msgid, cfg = _setup(tmp_path, pi_server)
    assert main(["--config", cfg, "tree", "sync"]) == 0
    check = StandIn()
    monkeypatch.setattr(pipeline, "load_check", lambda name: check)

    sid = _run(settings, db)
    row = _row(db, sid)
    assert row.state == SeriesState.HELD
    assert "aarch64-linux-gnu-gcc not found" in row.reason
    assert row.retry_at is not None and row.retry_at > utcnow()
    with db.session() as s:
        assert s.scalars(select(ReplyRow)).all() == []
    assert _outbox(settings) == []
    # the page and /metrics say so
    client = TestClient(create_app(settings, db))
    page = client.get(f"/series/{msgid}").text
    assert "held" in page and "aarch64-linux-gnu-gcc not found" in page
    assert 'lorebot_series{state="held"} 1' in client.get("/metrics").text

    # not due yet: nothing moves; once due and fixed, it is checked and mailed once
    assert queue.retry_held(db) == []
    check.fault = ""
    assert queue.retry_held(db, utcnow() + timedelta(seconds=61)) == [sid]
    assert _run(settings, db) == sid
    assert _row(db, sid).state == SeriesState.DONE
    assert len(_outbox(settings)) == 1
    # a second pass over the same result mails nothing new
    queue.requeue(db, sid)
    _run(settings, db)
    assert len(_outbox(settings)) == 1


def test_an_unsynced_tree_holds_the_series_and_mails_nothing(
    tmp_path: Path, pi_server: PublicInboxServer
) -> None:
    settings, db, _msgid, cfg = _setup(tmp_path, pi_server)  # the tree was never synced
    sid = _run(settings, db)
    row = _row(db, sid)
    assert row.state == SeriesState.HELD and "not synced" in row.reason
    assert _outbox(settings) == []
    assert main(["--config", cfg, "tree", "sync"]) == 0
    assert queue.retry_held(db, utcnow() + timedelta(hours=1)) == [sid]
    _run(settings, db)
    assert _row(db, sid).state == SeriesState.DONE
