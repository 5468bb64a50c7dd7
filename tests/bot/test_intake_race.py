"""Two polls at once on one database: the second to insert a series (or its messages)
finds the first one's row instead of failing with an IntegrityError."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event, func, select

from bot.core.models import PatchMail, Series
from bot.intake.series_rows import store_series, upsert_series
from config.settings import ListSettings, Settings
from state.db import Database
from state.models import PatchRow, SeriesRow
from tests.support.waiting import wait_for

LIST = ListSettings(name="linux-mm", url="http://127.0.0.1:9/linux-mm")
SERIES = Series(
    msgid="race-0@example.org",
    subject="[PATCH 0/1] mm: race",
    total=1,
    cover="race-0@example.org",
    author_email="ann@example.org",
    patches=(PatchMail(index=1, msgid="race-1@example.org", subject="[PATCH 1/1] mm: race"),),
)


def test_second_insert_of_a_series_finds_the_first(settings: Settings, db: Database) -> None:
    """The other poll's insert lands between our look-up and our insert (made certain
    here: ours runs while the other holds its row uncommitted)."""
    results: list[Any] = []
    ours_inserting = threading.Event()

    def ours() -> None:
        try:
            results.append(store_series(db, LIST, SERIES, {SERIES.msgid}))
        except Exception as e:
            results.append(e)

    t = threading.Thread(target=ours)

    @event.listens_for(db.engine, "before_cursor_execute")
    def spy(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if threading.current_thread() is t and statement.startswith("INSERT INTO series"):
            ours_inserting.set()  # our look-up found nothing: the race is on

    with db.session() as other:
        upsert_series(other, LIST, SERIES)
        other.flush()  # the other poll's row, not committed yet: ours cannot see it
        t.start()
        wait_for(ours_inserting.is_set, what="our insert to start")
    # the other commits; ours, blocked on the write lock, then hits the unique key
    t.join(60)
    assert not t.is_alive()
    assert not isinstance(results[0], Exception), results[0]
    with db.session() as s:
        assert s.scalar(select(func.count(SeriesRow.id))) == 1
        assert s.scalar(select(func.count(PatchRow.id))) == 1
