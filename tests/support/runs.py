"""One series through the real worker path, as a service's worker runs it: claim, run."""

from __future__ import annotations

import email
from pathlib import Path

from bot.run import claims, queue
from bot.run.worker import run_series
from config.settings import Settings
from state.db import Database
from state.models import SeriesRow
from tests.support.gitrepo import SmallRepo
from tests.support.pi import PublicInboxServer


def run_next(settings: Settings, db: Database) -> int:
    """Claim the next queued series and run it; its id."""
    worker = claims.holder_name("w0")
    sid = queue.claim_next(db, worker)
    assert sid is not None
    with claims.held(worker):
        run_series(settings, db, sid, worker)
    return sid


def series_row(db: Database, sid: int) -> SeriesRow:
    """The series' row, detached from its session."""
    with db.session() as s:
        row = s.get(SeriesRow, sid)
        assert row is not None
        s.expunge(row)
        return row


def post_one_patch(tmp_path: Path, pi: PublicInboxServer, new: str) -> tuple[SmallRepo, str]:
    """A one-patch series on a small tree (mm/alpha.c's `return 1;` becomes `new`), posted
    to `pi`; the work repository and the patch's Message-ID."""
    work = SmallRepo(tmp_path / "work")
    base = work.head()
    work.commit("mm: alpha", {"mm/alpha.c": work.edit("mm/alpha.c", "return 1;", new)})
    mails = work.mails(base, ("--thread",))
    pi.post_many(mails)
    return work, str(email.message_from_bytes(mails[0])["Message-Id"]).strip("<>")
