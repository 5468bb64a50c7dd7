"""A nearly full disk (the cache on a small tmpfs) holds the series with its reason: nothing
is lost, nothing is mailed; once there is room it is checked. Idle build dirs are evicted
first to make room."""

from __future__ import annotations

import mailbox
import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.cli.main import main
from bot.core.states import SeriesState
from bot.run import queue
from bot.run.delivery import Mailer
from bot.web import create_app
from config.settings import load_settings
from state.db import Database
from state.models import PatchRow, ReplyRow, SeriesRow, utcnow
from tests.support.pi import PublicInboxServer, small_tree_config
from tests.support.runs import post_one_patch, run_next, series_row

MiB = 2**20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(b"\0" * size)


def test_a_nearly_full_disk_holds_the_series_and_mails_nothing(
    tmp_path: Path, pi_server: PublicInboxServer, small_disk: Path
) -> None:
    work, msgid = post_one_patch(tmp_path, pi_server, "return 7;")
    cfg = small_tree_config(
        tmp_path,
        pi_server,
        work.path,
        "[checks]\nenabled = []\n\n[mail]\nsuccess_summary = true\n\n"
        f"[cache]\nmin_free_bytes = {24 * MiB}\n",
    )
    text = cfg.read_text().replace(f'cache = "{tmp_path / "cache"}"', f'cache = "{small_disk}"')
    cfg.write_text(text)
    assert main(["--config", str(cfg), "poll", "--once"]) == 0
    assert main(["--config", str(cfg), "tree", "sync"]) == 0
    settings = load_settings(cfg)
    db = Database(settings.database_url)
    # an idle build dir gc may take, and data it may not: 48 - 8 - 30 (+ 8) < 24 MiB free
    _fill(small_disk / "build" / "small-0" / "x86_64" / "vmlinux.o", 8 * MiB)
    (small_disk / "build" / "small-0" / "x86_64.lock").touch()
    _fill(small_disk / "ccache" / "big", 30 * MiB)

    def run() -> SeriesRow:
        return series_row(db, run_next(settings, db))

    def outbox() -> list[str]:
        Mailer(settings, db).deliver_pending()
        box = settings.paths.state / "outbox"
        return [str(m["Subject"]) for m in mailbox.Maildir(box)] if box.exists() else []

    row = run()
    assert row.state == SeriesState.HELD, row.reason
    assert "not enough free disk" in row.reason and "min_free_bytes" in row.reason
    # the idle build dir went first, the held series lost nothing, nothing was mailed
    assert not (small_disk / "build" / "small-0" / "x86_64").exists()
    with db.session() as s:
        assert s.scalars(select(ReplyRow)).all() == []
        assert len(s.scalars(select(PatchRow).where(PatchRow.series_id == row.id)).all()) == 1
    assert outbox() == []
    client = TestClient(create_app(settings, db))
    assert "not enough free disk" in client.get(f"/series/{msgid}").text
    assert 'lorebot_series{state="held"} 1' in client.get("/metrics").text
    # the overview names it as the oldest series still waiting for a result
    oldest = client.get("/api/status").json()["oldest_waiting"]
    assert oldest["msgid"] == msgid and "not enough free disk" in oldest["reason"]
    assert "Oldest series without a result" in client.get("/").text
    # room again: the retry checks it and its one mail goes out
    (small_disk / "ccache" / "big").unlink()
    assert queue.retry_held(db, utcnow() + timedelta(hours=1)) == [row.id]
    row = run()
    assert row.state == SeriesState.DONE, row.reason
    assert len(outbox()) == 1
    db.dispose()
