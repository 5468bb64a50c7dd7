"""`lorebot check` and `lorebot serve` share one run function and one claim: a series
that one of them is running is never run by the other at the same time."""

from __future__ import annotations

import email
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli.main import main
from bot.run import claims, queue, worker
from config.settings import load_settings
from state.db import Database
from state.models import RunRow, SeriesRow
from tests.support.gitrepo import SmallRepo
from tests.support.pi import PublicInboxServer, small_tree_config


def _runs(db: Database, series_id: int) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(RunRow.state).where(RunRow.series_id == series_id)))


def test_check_and_a_service_never_run_one_series_twice(
    tmp_path: Path,
    pi_server: PublicInboxServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = SmallRepo(tmp_path / "work")
    base = work.head()
    work.commit(
        "mm: alpha returns minus one",
        {"mm/alpha.c": work.edit("mm/alpha.c", "return 1;", "return -1;")},
    )
    mails = work.mails(base, ("--thread",))
    pi_server.post_many(mails)
    msgid = str(email.message_from_bytes(mails[0])["Message-Id"]).strip("<>")
    cfg = str(small_tree_config(tmp_path, pi_server, work.path, "[checks]\nenabled = []\n"))
    settings = load_settings(Path(cfg))
    assert main(["--config", cfg, "tree", "sync"]) == 0
    assert main(["--config", cfg, "poll", "--once"]) == 0
    db = Database(settings.database_url)
    with db.session() as s:
        series_id = s.scalars(select(SeriesRow.id).where(SeriesRow.msgid == msgid)).one()

    # a service's worker (on another host, heartbeat fresh) runs it: the check leaves it alone
    assert queue.claim_next(db, "elsewhere/4242/w0") == series_id
    assert main(["--config", cfg, "check", msgid]) == 3
    assert "being checked right now by elsewhere/4242/w0" in capsys.readouterr().err
    assert _runs(db, series_id) == []
    queue.release(db, series_id, "queued")

    # the check runs it: a service starting meanwhile neither takes it back nor claims it
    seen: dict[str, Any] = {}
    real = worker.check_series

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        seen["recovered"] = queue.recover_interrupted(db)
        seen["claimed"] = queue.claim_next(db, claims.holder_name("w0"))
        return real(*args, **kwargs)

    monkeypatch.setattr(worker, "check_series", meanwhile)
    assert main(["--config", cfg, "check", msgid]) == 0
    assert seen == {"recovered": [], "claimed": None}
    assert _runs(db, series_id) == ["done"]
    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        assert row is not None and (row.state, row.claimed_by) == ("done", "")


def test_a_check_that_fails_finishes_its_run_with_the_reason(
    tmp_path: Path,
    pi_server: PublicInboxServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = SmallRepo(tmp_path / "work")
    base = work.head()
    work.commit("mm: beta", {"mm/beta.c": work.edit("mm/beta.c", "return 0;", "return 2;")})
    mails = work.mails(base, ("--thread",))
    pi_server.post_many(mails)
    msgid = str(email.message_from_bytes(mails[0])["Message-Id"]).strip("<>")
    cfg = str(small_tree_config(tmp_path, pi_server, work.path, "[checks]\nenabled = []\n"))
    assert main(["--config", cfg, "tree", "sync"]) == 0

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the slot vanished")

    monkeypatch.setattr(worker, "check_series", broken)
    assert main(["--config", cfg, "check", msgid]) == 1
    assert "the slot vanished" in capsys.readouterr().err
    db = Database(load_settings(Path(cfg)).database_url)
    with db.session() as s:
        row = s.scalars(select(SeriesRow).where(SeriesRow.msgid == msgid)).one()
        assert (row.state, row.claimed_by) == ("failed", "")
        assert "the slot vanished" in row.reason
        assert [r.state for r in row.runs] == ["failed"]
