"""A fault of ours holds a series with its reason and retries it; it never reaches a mail.

Real public-inbox, git trees, the real pipeline, page and /metrics, and a headless
chromium; the check is a stand-in so that the fault can be switched on and off: a tree
configured but not synced, a cross compiler missing (as the build check reports it), a
check that crashes.
"""

from __future__ import annotations

import json
import mailbox
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.cli.main import main
from bot.core.results import CheckResult, Finding
from bot.core.states import SeriesState
from bot.run import pipeline, queue
from bot.run.delivery import Mailer
from bot.web import create_app
from config.settings import Settings, load_settings
from state.db import Database
from state.models import ReplyRow, utcnow
from tests.support.pi import PublicInboxServer, small_tree_config
from tests.support.runs import post_one_patch
from tests.support.runs import run_next as _run
from tests.support.runs import series_row as _row
from tests.support.web import live_server


class StandIn:
    """A build check whose toolchain may be missing; it finds one error on patch 1."""

    name = "build"
    moves_head = False
    fault = "arm64: aarch64-linux-gnu-gcc not found"

    crash = False

    def run(self, ctx: Any) -> CheckResult:
        if self.crash:
            raise RuntimeError("the check fell over")
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
    work, msgid = post_one_patch(tmp_path, pi_server, "return x;")
    cfg = small_tree_config(
        tmp_path,
        pi_server,
        work.path,
        '[checks]\nenabled = ["build"]\n\n[service]\nhold_retry_seconds = 60\n'
        # the base-commit would be fetched by sha (test_treesync); here the branch is the base
        "\n[base]\nfetch_by_sha = false\n",
    )
    assert main(["--config", str(cfg), "poll", "--once"]) == 0
    settings = load_settings(cfg)
    return settings, Database(settings.database_url), msgid, str(cfg)


def _outbox(settings: Settings) -> list[str]:
    Mailer(settings, Database(settings.database_url)).deliver_pending()
    box = settings.paths.state / "outbox"
    return [str(m["Subject"]) for m in mailbox.Maildir(box)] if box.exists() else []


@dataclass
class Held:
    """A series held for one fault of ours, and how to take the fault away."""

    settings: Settings
    db: Database
    msgid: str
    sid: int
    reason: str  # what the page and the JSON say
    fix: Callable[[], None]


FAULTS = ["unsynced-tree", "missing-toolchain", "crashed-check"]


def _held(tmp_path: Path, pi_server: PublicInboxServer, mp: pytest.MonkeyPatch, fault: str) -> Held:
    """The series checked with `fault` on: held with its reason, nothing mailed."""
    settings, db, msgid, cfg = _setup(tmp_path, pi_server)
    check = StandIn()
    mp.setattr(pipeline, "load_check", lambda name: check)
    check.fault = "arm64: aarch64-linux-gnu-gcc not found" if fault == "missing-toolchain" else ""
    check.crash = fault == "crashed-check"
    if fault != "unsynced-tree":
        assert main(["--config", cfg, "tree", "sync"]) == 0
    reason = {
        "unsynced-tree": "small/master not synced",
        "missing-toolchain": "aarch64-linux-gnu-gcc not found",
        "crashed-check": "build crashed: RuntimeError",
    }[fault]

    def fix() -> None:
        check.fault, check.crash = "", False
        assert main(["--config", cfg, "tree", "sync"]) == 0

    sid = _run(settings, db)
    row = _row(db, sid)
    assert row.state == SeriesState.HELD and reason in row.reason, row.reason
    assert row.retry_at is not None and row.retry_at > utcnow()
    with db.session() as s:
        assert s.scalars(select(ReplyRow)).all() == []
    assert _outbox(settings) == []
    return Held(settings, db, msgid, sid, reason, fix)


def _retried_and_mailed_once(h: Held) -> None:
    # not due yet: nothing moves; once due and fixed, it is checked and mailed once
    assert queue.retry_held(h.db) == []
    h.fix()
    assert queue.retry_held(h.db, utcnow() + timedelta(hours=1)) == [h.sid]
    assert _run(h.settings, h.db) == h.sid
    assert _row(h.db, h.sid).state == SeriesState.DONE
    assert len(_outbox(h.settings)) == 1
    # a second pass over the same result mails nothing new
    queue.requeue(h.db, h.sid)
    _run(h.settings, h.db)
    assert len(_outbox(h.settings)) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_of_ours_holds_the_series_then_it_is_mailed_once(
    tmp_path: Path, pi_server: PublicInboxServer, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    h = _held(tmp_path, pi_server, monkeypatch, fault)
    # the page, the JSON and /metrics say so
    client = TestClient(create_app(h.settings, h.db))
    page = client.get(f"/series/{h.msgid}").text
    assert "held" in page and h.reason in page
    if fault == "crashed-check":  # the run's notes are on the page, never in a mail
        assert "build did not complete: RuntimeError" in page
    assert h.reason in json.dumps(client.get(f"/api/series/{h.msgid}").json())
    metrics = client.get("/metrics").text
    assert 'lorebot_series{state="held"} 1' in metrics
    assert 'lorebot_replies{state="sent"} 0' in metrics
    _retried_and_mailed_once(h)
    metrics = client.get("/metrics").text
    assert 'lorebot_series{state="done"} 1' in metrics
    assert 'lorebot_replies{state="sent"} 1' in metrics


@pytest.mark.browser
@pytest.mark.parametrize("fault", FAULTS)
def test_a_held_series_in_chromium(
    tmp_path: Path,
    pi_server: PublicInboxServer,
    monkeypatch: pytest.MonkeyPatch,
    browser: Any,
    fault: str,
) -> None:
    """What an operator sees in a browser: the series held, why, and nothing sent; then,
    once the fault is gone and the retry ran, the series done and its one reply."""
    from selenium.webdriver.common.by import By

    h = _held(tmp_path, pi_server, monkeypatch, fault)
    with live_server(create_app(h.settings, h.db)) as base:
        browser.get(f"{base}/series/{quote(h.msgid, safe='@')}")
        facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
        assert "held" in facts and h.reason in facts, facts
        assert not browser.find_elements(By.CSS_SELECTOR, "tr.reply")
        browser.get(f"{base}/")
        assert "held" in browser.find_element(By.TAG_NAME, "body").text
        _retried_and_mailed_once(h)
        browser.get(f"{base}/series/{quote(h.msgid, safe='@')}")
        facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
        assert "done" in facts and h.reason not in facts, facts
        assert len(browser.find_elements(By.CSS_SELECTOR, "tr.reply")) == 1
