"""Series rows: one revision's row created or refreshed, revisions superseded, waits expired.

Pure database work on what intake assembled; the poll (bot.intake.poll)
decides when.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.models import Series
from bot.core.states import OPEN, SeriesState
from bot.intake.series import series_key
from config.settings import ListSettings, Settings
from state.db import Database
from state.models import Message, PatchRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.intake")
SERIES_KINDS = ("patch", "cover", "followup")


T = TypeVar("T")
RACE_TRIES = 3


def retry_race(db: Database, work: Callable[[Session], T]) -> T:
    """Run `work` in a transaction, again when another poll inserted the same row first.

    Two polls (two services, or `poll --once` beside `serve`) may both find no
    row for a series or a message and both insert it: the second gets an
    IntegrityError on the unique key. Its transaction is rolled back and
    done again, and then finds the row the other committed.
    """
    for attempt in range(1, RACE_TRIES + 1):
        try:
            with db.session() as s:
                return work(s)
        except IntegrityError:
            if attempt == RACE_TRIES:
                raise
            log.info("another poll stored the same rows first; again (try %d)", attempt + 1)
    raise AssertionError("unreachable")


def store_series(db: Database, lst: ListSettings, series: Series, covered: set[str]) -> str:
    """Create or refresh the series' row and tie its messages to it; the new state or ""."""

    def store(s: Session) -> str:
        row, moved = upsert_series(s, lst, series)
        s.flush()
        s.execute(
            update(Message)
            .where(
                Message.list_name == lst.name,
                Message.series_id.is_(None),
                Message.msgid.in_(covered)
                | (Message.in_reply_to.in_(covered) & Message.kind.not_in(SERIES_KINDS)),
            )
            .values(series_id=row.id)
        )
        # e.g. a cover taken in before its patches: no longer without a series
        s.execute(
            update(Message)
            .where(Message.series_id == row.id, Message.kind.in_(SERIES_KINDS))
            .values(reason="")
        )
        return moved

    return retry_race(db, store)


def refuse_series(
    s: Session,
    lst: ListSettings,
    msgid: str,
    reason: str,
    *,
    subject: str = "",
    author: str = "",
    covered: tuple[str, ...] = (),
) -> bool:
    """A series over the intake bounds: its row skipped with the reason (the page and the
    JSON say why), its messages tied to it; False if its row had already moved on."""
    row = s.scalars(
        select(SeriesRow).where(SeriesRow.list_name == lst.name, SeriesRow.msgid == msgid)
    ).first()
    if row is None:
        row = SeriesRow(list_name=lst.name, msgid=msgid, first_seen=utcnow(), state="")
        row.subject, row.author, row.complete = subject, author, False
        s.add(row)
    elif row.state not in OPEN:
        return False
    row.state, row.reason = SeriesState.SKIPPED, f"too big: {reason}"
    s.flush()
    s.execute(
        update(Message)
        .where(
            Message.list_name == lst.name,
            Message.series_id.is_(None),
            Message.msgid.in_({msgid, *covered}),
        )
        .values(series_id=row.id)
    )
    return True


def upsert_series(s: Session, lst: ListSettings, series: Series) -> tuple[SeriesRow, str]:
    """Create or refresh the row of one revision; returns (row, new state or "")."""
    row = s.scalars(
        select(SeriesRow).where(SeriesRow.list_name == lst.name, SeriesRow.msgid == series.msgid)
    ).first()
    before = row.state if row else ""
    if row is None:
        row = SeriesRow(
            list_name=lst.name, msgid=series.msgid, state=SeriesState.WAITING, first_seen=utcnow()
        )
        s.add(row)
    if row.state in OPEN or not before:
        row.thread_msgid = (
            series.patches[0].references[0]
            if series.patches and series.patches[0].references
            else series.msgid
        )
        row.subject = series.subject
        row.version = series.version
        row.total = series.total
        row.author = series.author
        row.author_email = series.author_email
        row.key = series_key(series)
        row.complete = series.complete
        row.has_cover = series.cover is not None
        row.base_commit = series.base_commit or ""
        row.last_message_at = utcnow()
        if series.parent:
            row.parent_id = s.scalars(
                select(SeriesRow.id).where(
                    SeriesRow.list_name == lst.name, SeriesRow.msgid == series.parent
                )
            ).first()
        _sync_patches(s, row, series)
        if row.state in (SeriesState.WAITING, SeriesState.INCOMPLETE) and series.complete:
            row.state, row.reason = SeriesState.QUEUED, ""
    s.flush()
    _supersede(s, lst, row)
    return row, (row.state if row.state != before else "")


def _sync_patches(s: Session, row: SeriesRow, series: Series) -> None:
    by_idx = {p.idx: p for p in row.patches}
    for p in series.patches:
        prow = by_idx.pop(p.index, None)
        if prow is None:
            prow = PatchRow(idx=p.index, msgid=p.msgid)
            row.patches.append(prow)
        prow.msgid, prow.subject, prow.author = p.msgid, p.subject, p.author
        prow.trailers = list(p.trailers)
    for stale in by_idx.values():
        row.patches.remove(stale)


def _supersede(s: Session, lst: ListSettings, row: SeriesRow) -> None:
    """Within a revision family (same key), the highest version (then the latest) wins."""
    if not row.key or row.key.startswith("followup:"):
        return
    family = list(
        s.scalars(
            select(SeriesRow).where(SeriesRow.list_name == lst.name, SeriesRow.key == row.key)
        )
    )
    newest = max(family, key=lambda r: (r.version, r.id))
    for old in family:
        if old.id == newest.id:
            continue
        if old.superseded_by != newest.id:
            old.superseded_by = newest.id
        if old.state in OPEN:
            old.state = SeriesState.SUPERSEDED
            old.reason = f"superseded by v{newest.version} <{newest.msgid}>"
    if newest.state == SeriesState.SUPERSEDED:  # it was older until now
        newest.state = SeriesState.QUEUED if newest.complete else SeriesState.WAITING
        newest.superseded_by, newest.reason = None, ""


def expire_waiting(settings: Settings, db: Database, lst: ListSettings) -> Counter[str]:
    """Waiting series older than incomplete_timeout become incomplete, naming what is missing."""
    limit = utcnow() - timedelta(seconds=settings.intake.incomplete_timeout)
    states: Counter[str] = Counter()
    with db.session() as s:
        for row in s.scalars(
            select(SeriesRow).where(
                SeriesRow.list_name == lst.name,
                SeriesRow.state == SeriesState.WAITING,
                SeriesRow.first_seen <= limit,
            )
        ):
            have = {p.idx for p in row.patches}
            missing = [i for i in range(1, row.total + 1) if i not in have]
            names = ", ".join(f"{i}/{row.total}" for i in missing) or "none"
            row.state = SeriesState.INCOMPLETE
            row.reason = f"patches {names} missing after {settings.intake.incomplete_timeout} s"
            states["incomplete"] += 1
    return states
