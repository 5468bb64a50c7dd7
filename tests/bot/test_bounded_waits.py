"""A stalled inbox holds only its own list, for at most its network bounds: a real
public-inbox on loopback beside a server that accepts git's requests and never answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.intake.b4adapter import ThreadFetchError, fetch_thread
from bot.intake.poll import PollReport, is_polling, poll_once
from config.settings import Settings, load_settings
from state.db import Database
from state.models import Message
from tests.support.mailgen import MailGen
from tests.support.pi import PublicInboxServer
from tests.support.stall import StallingInbox
from tests.support.waiting import wait_for


def two_lists(tmp_path: Path, stalled: StallingInbox, good: PublicInboxServer, **net: int) -> dict:
    return {
        "paths": {"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        "lists": [
            {"name": stalled.name, "url": stalled.url},  # first: a sequential poll would wait
            {"name": good.name, "url": good.url, "address": good.address},
        ],
        "trees": [],
        "network": net,
    }


def recorded(db: Database, list_name: str) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Message.id)).where(Message.list_name == list_name)) or 0


def test_poll_once_returns_within_the_low_speed_bound(
    tmp_path: Path, pi_server: PublicInboxServer
) -> None:
    pi_server.post_many(MailGen(tmp_path / "gen").series("mm: add foo", 2))
    with StallingInbox() as stalled:
        cfg = two_lists(tmp_path, stalled, pi_server, low_speed_time=2, fetch_timeout=3600)
        lines = [
            "[paths]",
            f'state = "{cfg["paths"]["state"]}"',
            f'cache = "{cfg["paths"]["cache"]}"',
            "[network]",
            "low_speed_time = 2",
            "fetch_timeout = 3600",  # only the low-speed limit can end the stalled fetch
        ]
        for lst in cfg["lists"]:
            lines += ["[[lists]]", *(f"{k} = {json.dumps(v)}" for k, v in lst.items())]
        (tmp_path / "c.toml").write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOREBOT_")}
        # the timeout only bounds a failure: without the bound the stalled fetch never ends
        cmd = [sys.executable, "-m", "bot.cli", "--config", str(tmp_path / "c.toml")]
        r = subprocess.run(
            [*cmd, "poll", "--once", "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert stalled.stalled_requests, "git never asked the stalled server"
        # the fetch was ended, its connection closed: no git left behind
        wait_for(lambda: stalled.open_connections == 0, what="the stalled fetch to be gone")
    assert r.returncode == 1, r.stderr
    report = {p["list"]: p for p in json.loads(r.stdout)["lists"]}
    assert "too slow" in report["stalled"]["error"], report["stalled"]
    assert report[pi_server.name]["error"] == ""
    assert report[pi_server.name]["new_messages"] == 3


def test_other_lists_are_polled_while_one_stalls(
    tmp_path: Path, pi_server: PublicInboxServer
) -> None:
    pi_server.post_many(MailGen(tmp_path / "gen").series("mm: add bar", 2))
    with StallingInbox() as stalled:
        # bounds far beyond this test: only the server's end stops the stalled fetch
        settings: Settings = load_settings(
            None, **two_lists(tmp_path, stalled, pi_server, low_speed_time=3600)
        )
        db = Database(settings.database_url)
        first: list[PollReport] = []
        t = threading.Thread(target=lambda: first.append(poll_once(settings, db)), daemon=True)
        t.start()
        # the good list is taken in while the stalled one still hangs
        wait_for(
            lambda: recorded(db, pi_server.name) == 3 and not is_polling(pi_server.name),
            timeout=120,
            what="the good list's poll to end",
        )
        assert is_polling("stalled") and stalled.open_connections == 1 and t.is_alive()
        # a second pass skips the list whose poll still runs and polls the others
        second = {p.list_name: p for p in poll_once(settings, db).lists}
        assert second["stalled"].error.startswith("skipped")
        assert second[pi_server.name].error == ""
    t.join(60)  # the server hung up: the stalled fetch fails and the first pass ends
    assert not t.is_alive()
    first_by_list = {p.list_name: p for p in first[0].lists}
    assert first_by_list["stalled"].error and first_by_list[pi_server.name].new_messages == 3
    db.dispose()


def test_thread_fetch_that_trickles_is_ended_by_its_deadline(tmp_path: Path) -> None:
    """A byte every 0.1 s never trips a per-read timeout; the whole fetch's deadline does."""
    with StallingInbox(trickle=True) as server:
        settings = load_settings(
            None,
            paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
            lists=[{"name": server.name, "url": server.url}],
            trees=[],
            intake={"http_timeout": 600},
            network={"thread_timeout": 2},
        )
        with pytest.raises(ThreadFetchError, match=r"network\.thread_timeout"):
            fetch_thread(settings, settings.lists[0], "x@example.org")
        assert server.stalled_requests
        wait_for(lambda: server.open_connections == 0, what="the connection to be closed")
