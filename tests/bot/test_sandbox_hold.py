"""Without a working sandbox lorebot builds nothing: the series is held with how to fix it.

Real public-inbox, git tree, pipeline and `lorebot check`; the bubblewrap named in
the settings does not exist.
"""

from __future__ import annotations

import email
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.cli.main import main
from bot.core.states import SeriesState
from bot.web import create_app
from config.settings import load_settings
from state.db import Database
from state.models import ReplyRow, SeriesRow
from tests.support.gitrepo import SmallRepo
from tests.support.pi import PublicInboxServer, small_tree_config


def test_no_bubblewrap_holds_the_series_and_builds_nothing(
    tmp_path: Path, pi_server: PublicInboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    work = SmallRepo(tmp_path / "work")
    base = work.head()
    work.commit("mm: alpha", {"mm/alpha.c": work.edit("mm/alpha.c", "return 1;", "return x;")})
    mails = work.mails(base, ("--thread",))
    pi_server.post_many(mails)
    msgid = str(email.message_from_bytes(mails[0])["Message-Id"]).strip("<>")
    missing = f'[sandbox]\nbwrap = "{tmp_path / "no-such-bwrap"}"\n'
    cfg = small_tree_config(tmp_path, pi_server, work.path, missing)
    assert main(["--config", str(cfg), "tree", "sync"]) == 0
    capsys.readouterr()

    # lorebot check: refused, with how to fix it, nothing built
    main(["--config", str(cfg), "check", "--json", msgid])
    out = json.loads(capsys.readouterr().out)
    said = json.dumps(out)
    assert "apt-get install bubblewrap" in said and "allow_unsandboxed" in said
    assert out["variants"] == [] and out["replies"] == []

    # recorded as the service records it: held with the reason, no reply, on the page
    settings = load_settings(cfg)
    db = Database(settings.database_url)
    with db.session() as s:
        row = s.scalars(select(SeriesRow)).one()
        assert row.state == SeriesState.HELD
        assert "bubblewrap" in row.reason
        assert s.scalars(select(ReplyRow)).all() == []
    page = TestClient(create_app(settings, db)).get(f"/series/{msgid}").text
    assert "held" in page and "bubblewrap" in page
