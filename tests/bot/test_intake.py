"""Intake against a real public-inbox-httpd on loopback, with real b4 and git."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.intake import lore
from bot.intake.poll import poll_once
from bot.web.freshness import series_lag
from state.db import Database
from state.models import Cursor, Message, PatchRow, PollRow, SeriesRow
from tests.support.mailgen import MailGen, msgid_of
from tests.support.pi import PublicInboxServer, intake_settings


@pytest.fixture
def gen(tmp_path: Path) -> MailGen:
    return MailGen(tmp_path / "gen")


def messages(db: Database) -> dict[str, Message]:
    with db.session() as s:
        return {m.msgid: m for m in s.scalars(select(Message))}


def series_rows(db: Database) -> dict[str, SeriesRow]:
    with db.session() as s:
        return {r.msgid: r for r in s.scalars(select(SeriesRow))}


def test_generated_mail(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    settings = intake_settings(tmp_path, pi_server, max_message_bytes=5 * 1024 * 1024)
    v1 = gen.series("mm: add foo", 3)
    review = gen.trailer_reply(v1[2])
    robot = gen.robot_reply(v1[1])
    v2 = gen.series("mm: add foo", 3, version=2, in_reply_to=msgid_of(v1[0]))
    follow = gen.followup(v2[0])
    lone = gen.series("net: fix bar", 1, cover=False)
    pull, plain = gen.pull_request(), gen.plain()
    pi_server.post_many([*v1, review, robot, *v2, follow, *lone, pull, plain])
    # what public-inbox would repair or refuse goes in as raw commits, like a mirror has it
    for raw in (gen.no_msgid(), gen.unknown_charset(), gen.huge(), gen.broken_mime()):
        pi_server.post_raw_commit(raw)

    report = poll_once(settings, db)

    assert report.errors == ()
    kinds = report.lists[0].kinds
    assert kinds == {
        "cover": 2,
        "patch": 7,
        "reply": 1,
        "robot": 1,
        "followup": 1,
        "pull": 1,
        "other": 1,
        "malformed": 4,
    }
    msgs = messages(db)
    reasons = sorted(m.reason for m in msgs.values() if m.kind == "malformed")
    assert reasons[0].startswith("broken MIME")
    assert reasons[1].startswith("message is 104") and "over the limit" in reasons[1]
    assert reasons[2] == "no Message-ID"
    assert reasons[3] == "unknown charset 'x-no-such-charset'"
    rows = series_rows(db)
    old, new = rows[msgid_of(v1[0])], rows[msgid_of(v2[0])]
    assert (old.state, old.superseded_by, old.version) == ("superseded", new.id, 1)
    assert (new.state, new.version, new.complete, new.has_cover) == ("queued", 2, True, True)
    assert rows[msgid_of(lone[0])].state == "queued"
    fu = rows[msgid_of(follow)]
    assert (fu.state, fu.parent_id, fu.total) == ("queued", new.id, 1)
    with db.session() as s:
        p2 = s.scalars(select(PatchRow).where(PatchRow.msgid == msgid_of(v1[2]))).one()
        assert p2.trailers == ["Reviewed-by: Rob Reviewer <rob@example.org>"]
        assert s.scalar(select(func.count()).select_from(PollRow)) == 1
    for raw in (*v1, *v2, *lone, follow):
        assert msgs[msgid_of(raw)].series_id is not None, msgid_of(raw)
    assert msgs[msgid_of(review)].series_id == old.id  # a reply joins its series
    assert msgs[msgid_of(pull)].series_id is None

    again = poll_once(settings, db)
    assert again.new_messages == 0 and again.errors == ()
    assert len(messages(db)) == len(msgs)


def test_incomplete_waits_then_times_out(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    series = gen.series("mm: partial", 3)
    pi_server.post_many(series[:3])  # cover, 1/3, 2/3
    waiting = intake_settings(tmp_path, pi_server, incomplete_timeout=3600)
    poll_once(waiting, db)
    row = series_rows(db)[msgid_of(series[0])]
    assert (row.state, row.complete) == ("waiting", False)

    expired = intake_settings(tmp_path, pi_server, incomplete_timeout=0)
    report = poll_once(expired, db)
    row = series_rows(db)[msgid_of(series[0])]
    assert report.lists[0].series == {"incomplete": 1}
    assert row.state == "incomplete" and "3/3" in row.reason

    pi_server.post(series[3])
    poll_once(expired, db)
    row = series_rows(db)[msgid_of(series[0])]
    assert (row.state, row.complete, row.reason) == ("queued", True, "")


def test_many_messages_between_polls(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    settings = intake_settings(tmp_path, pi_server)
    assert poll_once(settings, db).errors == ()  # an empty inbox is no error
    mail: list[bytes] = []
    for i in range(45):
        s = gen.series(f"drv: change {i}", 3)
        mail += [*s, gen.trailer_reply(s[1])]
    pi_server.post_many(mail)  # 225 messages land between two polls
    report = poll_once(settings, db)
    assert report.errors == ()
    assert report.new_messages == len(mail) == 225
    assert set(messages(db)) == {msgid_of(m) for m in mail}
    rows = series_rows(db)
    assert len(rows) == 45 and {r.state for r in rows.values()} == {"queued"}


def test_server_down_then_catch_up(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    settings = intake_settings(tmp_path, pi_server, http_timeout=5)
    pi_server.post_many(gen.series("first", 2))
    assert poll_once(settings, db).new_messages == 3
    pi_server.stop()
    later = gen.series("second", 2)
    pi_server.post_many(later)
    down = poll_once(settings, db)
    assert down.new_messages == 0
    assert "unreachable" in down.errors[0]
    with db.session() as s:
        poll = s.scalars(select(PollRow).order_by(PollRow.id.desc())).first()
        assert poll is not None and "unreachable" in poll.error
    pi_server.start()
    up = poll_once(settings, db)
    assert up.errors == () and up.new_messages == 3
    assert series_rows(db)[msgid_of(later[0])].state == "queued"


def test_restart_resumes_without_duplicates(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen
) -> None:
    settings = intake_settings(tmp_path, pi_server)
    pi_server.post_many(gen.series("one", 2))
    db1 = Database(settings.database_url)
    poll_once(settings, db1)
    db1.dispose()
    pi_server.post_many(gen.series("two", 2))
    db2 = Database(settings.database_url)  # a new process: only the database survives
    assert poll_once(settings, db2).new_messages == 3
    # a crash after the messages were committed but before the cursor moved:
    with db2.session() as s:
        s.query(Cursor).delete()
    pi_server.post_many(gen.series("three", 1, cover=False))
    report = poll_once(settings, db2)
    assert report.new_messages == 1  # the re-read ones are dropped by Message-ID
    assert len(messages(db2)) == 7
    assert len(series_rows(db2)) == 3
    db2.dispose()


def test_history_rewrite(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    settings = intake_settings(tmp_path, pi_server)
    a, b, c = gen.plain("a"), gen.plain("b"), gen.plain("c")
    pi_server.post_many([a, b, c])
    poll_once(settings, db)
    d = gen.plain("d")
    pi_server.post(d)
    commits = lore.new_commits(pi_server.runner, pi_server.epoch0, "", pi_server.head())
    pi_server.rewrite_drop(commits[1])  # purge "b": every later commit changes
    report = poll_once(settings, db)
    assert report.errors == () and report.new_messages == 1
    assert set(messages(db)) == {msgid_of(m) for m in (a, b, c, d)}
    cursor = lore.get_cursor(db, settings.lists[0].name, 0)
    assert cursor is not None and cursor.commit == pi_server.head()


def test_skip_history(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    settings = intake_settings(tmp_path, pi_server)
    old = gen.series("old", 2)
    pi_server.post_many(old)
    assert lore.skip_history(settings, db, settings.lists[0], pi_server.runner) == 1
    assert lore.skip_history(settings, db, settings.lists[0], pi_server.runner) == 0
    new = gen.followup(old[1])
    pi_server.post(new)
    assert poll_once(settings, db).new_messages == 1
    assert set(messages(db)) == {msgid_of(new)}
    # the follow-up's parent predates intake: it gets a row to go on top of, unchecked
    rows = series_rows(db)
    parent = rows[msgid_of(old[0])]
    assert parent.state == "skipped" and rows[msgid_of(new)].parent_id == parent.id


def test_cover_before_patches_and_unindexed_mail(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    settings = intake_settings(tmp_path, pi_server)
    series = gen.series("mm: racing", 2)
    pi_server.post(series[0])  # a poll lands between the cover and its patches
    first = poll_once(settings, db)
    assert first.errors == ()
    assert messages(db)[msgid_of(series[0])].reason.startswith("no series")
    pi_server.post_many(series[1:])
    poll_once(settings, db)
    cover = messages(db)[msgid_of(series[0])]
    assert cover.series_id is not None and cover.reason == ""
    assert series_rows(db)[msgid_of(series[0])].state == "queued"
    # in git but not (yet) in the server's index: retried later, no error, no reason
    lone = gen.series("mm: not indexed", 1, cover=False)[0]
    pi_server.post_raw_commit(lone)
    report = poll_once(settings, db)
    assert report.errors == () and report.new_messages == 1
    msg = messages(db)[msgid_of(lone)]
    assert (msg.kind, msg.series_id, msg.reason) == ("patch", None, "")


def test_parse_manifest_and_probe(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip
    import json

    from config.settings import ListSettings

    lst = ListSettings(name="linux-mm", url="https://lore.kernel.org/linux-mm")
    data = gzip.compress(
        json.dumps(
            {
                "/linux-mm/git/1.git": {"fingerprint": "f1"},
                "/linux-mm/git/0.git": {},
                "/other/git/0.git": {"fingerprint": "x"},
            }
        ).encode()
    )
    epochs = lore.parse_manifest(data, lst)
    assert [(e.number, e.fingerprint) for e in epochs] == [(0, ""), (1, "f1")]
    assert epochs[1].urls[0] == "https://lore.kernel.org/linux-mm/git/1.git"

    class NoManifest:
        status_code = 404
        content = b""

    pi_server.post(gen.plain())
    settings = intake_settings(tmp_path, pi_server)
    monkeypatch.setattr(lore.requests, "get", lambda *a, **k: NoManifest())
    found = lore.discover_epochs(settings, settings.lists[0], pi_server.runner)
    assert [e.number for e in found] == [0]


def test_messages_keep_when_the_inbox_took_them_in(
    tmp_path: Path, pi_server: PublicInboxServer, gen: MailGen, db: Database
) -> None:
    """A series' lag starts when its last patch landed in the inbox (the inbox commit's
    time), not when a later poll took it in."""
    settings = intake_settings(tmp_path, pi_server)
    pi_server.post_many(gen.series("mm: land", 2, cover=False))
    git = ["git", "--git-dir", str(pi_server.epoch0), "log", "--format=%ct", "-1", "master"]
    landed = datetime.fromtimestamp(int(subprocess.check_output(git, text=True)), UTC)
    time.sleep(1.5)  # the poll comes later
    poll_once(settings, db)
    rows = [m for m in messages(db).values() if m.kind == "patch"]
    assert len(rows) == 2 and all(m.landed_at is not None for m in rows)
    last = max(m.landed_at for m in rows if m.landed_at)
    assert last == landed.replace(tzinfo=None)
    assert all(m.recorded_at - last >= timedelta(seconds=1) for m in rows)
    with db.session() as s:
        row = s.scalars(select(SeriesRow)).one()
        assert series_lag(s, row)["arrived"] == last.isoformat(timespec="seconds") + "Z"
