"""One intake pass: new inbox messages are recorded once, patch mail becomes series rows.

Order matters for crash safety: messages are committed, then the cursor moves,
then series are assembled from the recorded patch mail that has no series yet
(so a crash between the steps only repeats work, never loses it).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Series
from bot.core.runner import CommandError, Runner
from bot.core.states import OPEN, SeriesState
from bot.intake import lore
from bot.intake.b4adapter import ThreadFetchError, ThreadNotFound
from bot.intake.commands import apply_pending
from bot.intake.messages import record_messages
from bot.intake.series import SeriesError, SeriesTooBig, load_series
from bot.intake.series_rows import (
    SERIES_KINDS,
    expire_waiting,
    refuse_series,
    retry_race,
    store_series,
    upsert_series,
)
from config.settings import ListSettings, Settings
from state.db import Database
from state.models import Message, PollRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.intake")
NOT_FOUND_GRACE = 1800  # seconds a recorded message may be missing from the server's index


@dataclass(frozen=True)
class ListPoll:
    """What one pass found on one list."""

    list_name: str
    new_messages: int = 0
    kinds: Mapping[str, int] = field(default_factory=dict)  # kind -> new messages
    series: Mapping[str, int] = field(default_factory=dict)  # state -> series moved there
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class PollReport:
    lists: tuple[ListPoll, ...]

    @property
    def new_messages(self) -> int:
        return sum(p.new_messages for p in self.lists)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(p.error for p in self.lists if p.error)

    def as_dict(self) -> dict[str, object]:
        return {
            "new_messages": self.new_messages,
            "lists": [
                {
                    "list": p.list_name,
                    "new_messages": p.new_messages,
                    "kinds": dict(p.kinds),
                    "series": dict(p.series),
                    "error": p.error,
                    "seconds": round(p.seconds, 3),
                }
                for p in self.lists
            ],
        }


_locks_guard = threading.Lock()
_list_locks: dict[str, threading.Lock] = {}


def _list_lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _list_locks.setdefault(name, threading.Lock())


def is_polling(list_name: str) -> bool:
    """Whether a poll of this list runs now in this process."""
    return _list_lock(list_name).locked()


def poll_once(
    settings: Settings, db: Database, runner: Runner | None = None, wait: float | None = None
) -> PollReport:
    """Take in every list's new messages and update the series they touch.

    Each list is polled on a thread of its own, so a stalled inbox holds only
    its own list (for at most its network timeouts). `wait`: seconds to wait
    for the lists (None: until each is done); a list still polling then is
    reported so and finishes in the background, and a pass that finds its
    list still being polled skips it.
    """
    runner = runner or Runner()
    results: dict[str, ListPoll] = {}
    threads: list[tuple[str, threading.Thread]] = []
    for lst in settings.lists:
        lock = _list_lock(lst.name)
        if not lock.acquire(blocking=False):
            results[lst.name] = ListPoll(lst.name, error="skipped: its previous poll still runs")
            continue
        t = threading.Thread(
            target=_poll_guarded,
            args=(settings, db, lst, runner, lock, results),
            name=f"poll-{lst.name}",
            daemon=True,
        )
        t.start()
        threads.append((lst.name, t))
    deadline = None if wait is None else time.monotonic() + wait
    for name, t in threads:
        t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            results.setdefault(name, ListPoll(name, error=f"still polling after {wait} s"))
    return PollReport(tuple(results[lst.name] for lst in settings.lists))


def _poll_guarded(
    settings: Settings,
    db: Database,
    lst: ListSettings,
    runner: Runner,
    lock: threading.Lock,
    results: dict[str, ListPoll],
) -> None:
    try:
        results[lst.name] = poll_list(settings, db, lst, runner)
    except Exception as e:  # one list's trouble must not stop the others
        log.exception("poll of %s failed", lst.name)
        error = f"internal error: {type(e).__name__}: {e}"
        results[lst.name] = ListPoll(lst.name, error=error)
        try:
            with db.session() as s:
                s.add(PollRow(list_name=lst.name, error=error))
        except Exception:
            log.exception("recording the failed poll of %s failed", lst.name)
    finally:
        lock.release()


def poll_list(settings: Settings, db: Database, lst: ListSettings, runner: Runner) -> ListPoll:
    """One list: fetch epochs, record messages, move cursors, assemble series, log a PollRow."""
    started, t0 = utcnow(), time.monotonic()
    kinds: Counter[str] = Counter()
    error = ""
    try:
        for batch in lore.new_mail(settings, db, lst, runner):
            kinds.update(record_messages(settings, db, lst, batch.mails))
            lore.set_cursor(
                db,
                lst.name,
                batch.epoch.number,
                batch.last,
                batch.epoch.fingerprint if batch.final else None,
            )
    except (lore.InboxError, CommandError) as e:
        error = str(e)
        log.error("poll of %s failed (the next poll catches up): %s", lst.name, error)
    states: Counter[str] = Counter()
    try:
        states.update(assemble_pending(settings, db, lst))
    except ThreadFetchError as e:
        error = error or str(e)
        log.error("series of %s not assembled (retried next poll): %s", lst.name, e)
    states.update(expire_waiting(settings, db, lst))
    apply_pending(settings, db)  # `#lorebot` commands taken in by this pass (or left over)
    seconds = time.monotonic() - t0
    new = sum(kinds.values())
    with db.session() as s:
        s.add(
            PollRow(
                list_name=lst.name,
                started_at=started,
                seconds=seconds,
                new_messages=new,
                error=error,
            )
        )
    return ListPoll(lst.name, new, dict(kinds), dict(states), error, seconds)


def assemble_pending(settings: Settings, db: Database, lst: ListSettings) -> Counter[str]:
    """Assemble the series of every recorded patch/cover/follow-up not yet in one.

    A mail no series can be made of gets a reason and is not retried; a
    thread that cannot be fetched stops the pass (retried next poll).
    """
    with db.session() as s:
        pending = s.scalars(
            select(Message)
            .where(
                Message.list_name == lst.name,
                Message.kind.in_(SERIES_KINDS),
                Message.series_id.is_(None),
                Message.reason == "",
            )
            .order_by(Message.id)
        ).all()
    states: Counter[str] = Counter()
    done: set[str] = set()
    for msg in pending:
        if msg.msgid in done:
            continue
        try:
            series = load_series(settings, lst, msgid=msg.msgid)
        except SeriesTooBig as e:
            if retry_race(db, functools.partial(_refuse, lst=lst, e=e)):
                states[SeriesState.SKIPPED] += 1
            done |= {msg.msgid, *e.covered}
            continue
        except SeriesError as e:
            _set_reason(db, msg.id, f"no series: {e}")
            continue
        except ThreadNotFound as e:
            # the inbox's git can be ahead of its index: retry for a while
            if utcnow() - msg.recorded_at > timedelta(seconds=NOT_FOUND_GRACE):
                _set_reason(db, msg.id, f"not found on the server: {e}")
            continue
        except ThreadFetchError:
            raise
        except Exception as e:  # b4 trips on odd threads; record and go on
            log.exception("%s: assembling the series of <%s> failed", lst.name, msg.msgid)
            _set_reason(db, msg.id, f"series assembly failed: {type(e).__name__}: {e}")
            continue
        if series.parent:
            _ensure_parent(settings, db, lst, series)
        covered = {series.msgid, *(p.msgid for p in series.patches)}
        if series.cover:
            covered.add(series.cover)
        moved = store_series(db, lst, series, covered)
        if moved:
            states[moved] += 1
        if msg.msgid not in covered:
            _set_reason(db, msg.id, f"b4 placed it in no series (thread of <{series.msgid}>)")
        done |= covered
    return states


def _refuse(s: Session, lst: ListSettings, e: SeriesTooBig) -> bool:
    return refuse_series(
        s, lst, e.msgid, e.reason, subject=e.subject, author=e.author, covered=e.covered
    )


def _ensure_parent(settings: Settings, db: Database, lst: ListSettings, series: Series) -> None:
    """A follow-up's parent gets a row, so workers find it (skipped when older than intake)."""
    assert series.parent
    with db.session() as s:
        if s.scalars(
            select(SeriesRow.id).where(
                SeriesRow.list_name == lst.name, SeriesRow.msgid == series.parent
            )
        ).first():
            return
    try:
        parent = load_series(settings, lst, series.parent)
    except (SeriesError, ThreadNotFound) as e:
        log.warning(
            "%s: parent <%s> of follow-up <%s> not loaded: %s",
            lst.name,
            series.parent,
            series.msgid,
            e,
        )
        return

    def store(s: Session) -> None:
        taken_in = s.scalars(
            select(Message.id).where(Message.list_name == lst.name, Message.msgid == series.parent)
        ).first()
        row, _ = upsert_series(s, lst, parent)
        if row.state in OPEN and not taken_in:
            row.state = SeriesState.SKIPPED
            row.reason = f"older than intake; taken in as the base of follow-up <{series.msgid}>"

    retry_race(db, store)


def _set_reason(db: Database, message_id: int, reason: str) -> None:
    with db.session() as s:
        s.execute(update(Message).where(Message.id == message_id).values(reason=reason))
