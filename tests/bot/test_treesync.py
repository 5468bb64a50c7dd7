"""Trees that stay fresh, on a real git server (git daemon) on loopback: the service syncs
each tree on its schedule and rides out a server outage; `lorebot check` syncs a tree that
was never synced; a base-commit on no configured branch is fetched by sha."""

from __future__ import annotations

import email
import json
import subprocess
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.cli.main import main
from bot.core.states import SeriesState
from bot.run.scheduler import Service
from bot.run.treesync import SyncResult, TreeJobs, retry_delay
from bot.web import create_app
from config.settings import NetworkSettings, Settings, TreeSettings, load_settings
from state.db import Database
from state.models import ReplyRow, SeriesRow, TreeSyncRow
from tests.support.gitrepo import SmallRepo, git
from tests.support.gitserver import GitDaemon, bare_git, commit_files
from tests.support.pi import PublicInboxServer
from tests.support.stall import StallingInbox
from tests.support.waiting import wait_for


def _served(tmp_path: Path) -> tuple[SmallRepo, GitDaemon, Path]:
    """A small tree's bare clone served by git daemon (branch master)."""
    work = SmallRepo(tmp_path / "work")
    root = tmp_path / "served"
    root.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work.path), str(root / "small.git")], check=True
    )
    daemon = GitDaemon(root)
    daemon.start()
    return work, daemon, root / "small.git"


def _config(tmp_path: Path, pi: PublicInboxServer, url: str, extra: str = "") -> Path:
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{tmp_path / "cache"}"\n\n'
        f'[[lists]]\nname = "{pi.name}"\nurl = "{pi.url}"\naddress = "{pi.address}"\n'
        'trees = ["small"]\n\n'
        f'[[trees]]\nname = "small"\nurl = "{url}"\nbranches = ["master"]\n'
        "sync_interval = 5\nsync_retry_seconds = 1\n\n"
        "[checks]\nenabled = []\n\n[intake]\npoll_interval = 5\n\n" + extra
    )
    return cfg


def _post_series(pi: PublicInboxServer, work: SmallRepo, base: str, subject: str) -> str:
    """A one-patch series on `base` (its base-commit:), posted; its Message-ID."""
    git(work.path, "checkout", "-q", "--detach", base)
    work.commit(subject, {"mm/beta.c": work.edit("mm/beta.c", "return 0;", "return 2;")})
    mails = work.mails(base, ("--thread",))
    pi.post_many(mails)
    return str(email.message_from_bytes(mails[0])["Message-Id"]).strip("<>")


def test_check_syncs_a_never_synced_tree_and_fetches_a_base_by_sha(
    tmp_path: Path, pi_server: PublicInboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    work, daemon, served = _served(tmp_path)
    try:
        # a commit on a branch the settings do not name: reachable only by its sha
        side = commit_files(served, "master", {"mm/gamma.c": "int gamma;\n"}, "mm: gamma")
        bare_git(served, "update-ref", "refs/heads/side", side)
        git(work.path, "fetch", "-q", str(served), "side")
        msgid = _post_series(pi_server, work, side, "mm: beta returns 2")
        cfg = _config(tmp_path, pi_server, daemon.url("small.git"))
        assert main(["--config", str(cfg), "check", msgid, "--json"]) == 0
        captured = capsys.readouterr()
        assert "tree small was never synced: synced" in captured.err
        out = json.loads(captured.out)
        assert out["apply"]["ok"] and out["base"]["sha"] == side
        applied = [t for t in out["apply"]["tried"] if t["ok"]]
        assert applied[0]["how"] == "base-commit" and applied[0]["tree"] == "small"
        assert "fetched by sha from small" in applied[0]["reason"]
        settings = load_settings(cfg)
        with Database(settings.database_url).session() as s:
            row = s.get(TreeSyncRow, "small")
            assert row is not None and row.last_ok_at is not None
            assert row.heads == {"master": bare_git(served, "rev-parse", "master").strip()}
    finally:
        daemon.stop()


def test_the_service_syncs_on_schedule_and_rides_out_a_server_outage(
    tmp_path: Path, pi_server: PublicInboxServer
) -> None:
    work, daemon, served = _served(tmp_path)
    cfg = _config(tmp_path, pi_server, daemon.url("small.git"))
    settings = load_settings(cfg)
    db = Database(settings.database_url)
    client = TestClient(create_app(settings, db))
    service = Service(settings, db, poll_interval=1.0, idle_wait=0.5)

    def sync() -> TreeSyncRow | None:
        with db.session() as s:
            row = s.get(TreeSyncRow, "small")
            if row is not None:
                s.expunge(row)
            return row

    def state(msgid: str) -> str:
        with db.session() as s:
            return str(s.scalars(select(SeriesRow.state).where(SeriesRow.msgid == msgid)).first())

    h0 = work.head()
    service.start()
    try:
        wait_for(lambda: (r := sync()) and r.last_ok_at, 30, "the first sync")
        daemon.stop()
        h1 = commit_files(served, h0, {"mm/delta.c": "int delta;\n"}, "mm: delta")
        bare_git(served, "update-ref", "refs/heads/master", h1)
        failed = wait_for(lambda: (r := sync()) and r.failures >= 1 and r, 30, "a failed sync")
        assert failed.error and failed.heads == {"master": h0}
        # shown: on the page, in the JSON and in /metrics
        page = client.get("/").text
        assert "small" in page and failed.error.split(":")[0] in page
        assert client.get("/api/status").json()["trees"][0]["failures"] >= 1
        assert 'lorebot_tree_sync_failures{tree="small"}' in client.get("/metrics").text
        # retried (doubling from 1 s), never fatal: intake and the queue go on meanwhile
        wait_for(lambda: (r := sync()) and r.failures >= 2, 30, "a retried sync")
        msgid = _post_series(pi_server, work, h0, "mm: beta returns 2")
        wait_for(lambda: state(msgid) == SeriesState.DONE, 60, "the series checked")
        # the server is back: the tree catches up
        daemon.start()
        caught = wait_for(
            lambda: (r := sync()) and r.failures == 0 and r.heads.get("master") == h1 and r,
            60,
            "the sync to catch up",
        )
        assert caught.error == "" and caught.changed_at is not None
        metrics = client.get("/metrics").text
        assert 'lorebot_tree_sync_failures{tree="small"} 0' in metrics
        assert 'lorebot_tree_sync_age_seconds{tree="small"}' in metrics
        assert 'lorebot_series_lag_seconds_count{to="result"} 1' in metrics
        detail = client.get(f"/api/series/{msgid}").json()
        assert detail["lag"]["result_seconds"] is not None
        assert "first result after" in client.get(f"/series/{msgid}").text
        with db.session() as s:
            assert s.scalars(select(ReplyRow)).all() == []
    finally:
        service.stop(timeout=60)
        daemon.stop()
        db.dispose()


def test_a_sync_that_stalls_mid_fetch_never_overlaps_itself_and_is_retried(
    settings: Settings, db: Database
) -> None:
    """The server accepts the fetch and stops answering (it went away mid-sync): the fetch
    is given up after the low-speed time, recorded, and brought forward for a retry; a
    second run of the same tree's job meanwhile does nothing."""
    with StallingInbox() as stalled:
        s = settings.model_copy(
            update={
                "trees": [
                    TreeSettings(
                        name="slow",
                        url=f"{stalled.url}/0",
                        sync_interval=3600,
                        sync_retry_seconds=1,
                    )
                ],
                "network": NetworkSettings(low_speed_time=2, fetch_timeout=30),
            }
        )
        jobs = TreeJobs(s, db, lambda: False)
        results: list[object] = []
        first = threading.Thread(target=lambda: results.append(jobs.run("slow")))
        first.start()
        wait_for(lambda: stalled.open_connections, 10, "the fetch to be under way")
        assert jobs.run("slow") is None  # the job of one tree never overlaps itself
        first.join(60)
    (result,) = results
    assert isinstance(result, SyncResult) and not result.ok and result.error
    with db.session() as session:
        row = session.get(TreeSyncRow, "slow")
        assert row is not None and row.failures == 1 and row.last_ok_at is None
    assert retry_delay(s.tree("slow"), 1) == 1 and retry_delay(s.tree("slow"), 20) == 3600
