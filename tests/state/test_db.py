"""The database: migrated on open, versioned, shared by several connections."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from state.db import MIGRATIONS, Database
from state.models import Cursor, SeriesRow


def head_revision() -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_open_migrates_to_head_and_reopen_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/lorebot.db"
    db = Database(url)
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "messages",
        "cursors",
        "series",
        "patches",
        "runs",
        "findings",
        "replies",
        "polls",
        "faults",
        "alembic_version",
    } <= tables
    with db.session() as s:
        s.add(SeriesRow(list_name="l", msgid="a@b", subject="[PATCH] x"))
        s.add(Cursor(list_name="l", epoch=0, commit="c0ffee"))
    db.dispose()
    again = Database(url)
    with again.engine.connect() as conn:
        version = conn.execute(text("select version_num from alembic_version")).scalar()
    assert version == head_revision()
    with again.session() as s:
        assert s.get(Cursor, ("l", 0)).commit == "c0ffee"  # type: ignore[union-attr]
        assert s.query(SeriesRow).one().state == "waiting"


def test_any_sqlalchemy_url(tmp_path: Path) -> None:
    db = Database("sqlite+pysqlite:///" + str(tmp_path / "other.sqlite"))
    with db.session() as s:
        s.add(SeriesRow(list_name="l", msgid="x@y"))
    with db.session() as s:
        assert s.query(SeriesRow).count() == 1
