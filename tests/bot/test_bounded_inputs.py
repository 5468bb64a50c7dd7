"""Inputs over the intake bounds are refused before they are parsed, with a reason the
page and the JSON show: a 50 MB patch mail, a series with a patch or a count too big."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.intake.poll import poll_once
from bot.web import create_app
from state.db import Database
from state.models import Message, SeriesRow
from tests.support.mailgen import MailGen, msgid_of
from tests.support.pi import PublicInboxServer, intake_settings

MB = 1024 * 1024


def series_by_msgid(db: Database) -> dict[str, SeriesRow]:
    with db.session() as s:
        return {r.msgid: r for r in s.scalars(select(SeriesRow))}


def test_50_mb_patch_mail_refused_before_it_is_read(
    tmp_path: Path, pi_server: PublicInboxServer, db: Database
) -> None:
    gen = MailGen(tmp_path / "gen")
    big = gen.big_patch(50 * MB)
    small = gen.series("mm: a normal fix", 1, cover=False)
    pi_server.post_raw_commit(big)  # as a mirror holds it: the list itself would bounce it
    pi_server.post_many(small)
    big_id, big_len = msgid_of(big), len(big)
    del big
    settings = intake_settings(tmp_path, pi_server)  # the default bounds
    tracemalloc.start()
    try:
        report = poll_once(settings, db)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.errors == ()
    # the mail was never held whole: not read past its headers, not parsed, not given to b4
    assert peak < 16 * MB, peak
    with db.session() as s:
        m = s.scalars(select(Message).where(Message.msgid == big_id)).one()
        assert m.kind == "malformed" and m.reason.startswith(f"message is {big_len} bytes")
    rows = series_by_msgid(db)
    assert rows[big_id].state == "skipped"
    assert rows[big_id].reason.startswith("too big: message is") and "over the limit" in (
        rows[big_id].reason
    )
    assert rows[msgid_of(small[0])].state == "queued"  # the rest of intake went on
    api = TestClient(create_app(settings, db)).get(f"/api/series/{quote(big_id, safe='@')}")
    assert api.json()["state"] == "skipped" and api.json()["reason"].startswith("too big")


def test_series_with_a_patch_over_the_bound_is_skipped_before_b4_makes_am_mail(
    tmp_path: Path, pi_server: PublicInboxServer, db: Database
) -> None:
    gen = MailGen(tmp_path / "gen")
    mails = gen.series("mm: add foo", 3)
    pi_server.post_many(mails)
    smallest = min(len(m) for m in mails[1:])
    settings = intake_settings(tmp_path, pi_server, max_patch_bytes=smallest - 1)
    report = poll_once(settings, db)
    assert report.errors == () and report.lists[0].series == {"skipped": 1}
    (row,) = series_by_msgid(db).values()
    assert row.msgid == msgid_of(mails[0])  # keyed by its cover, as an assembled series
    assert row.state == "skipped" and row.reason.startswith("too big: patch 1/3 is ")
    assert f"over intake.max_patch_bytes = {smallest - 1}" in row.reason
    with db.session() as s:  # every mail of it belongs to it: none is tried again
        assert {m.series_id for m in s.scalars(select(Message))} == {row.id}
    assert poll_once(settings, db).lists[0].series == {}


def test_series_with_too_many_patches_is_skipped(
    tmp_path: Path, pi_server: PublicInboxServer, db: Database
) -> None:
    gen = MailGen(tmp_path / "gen")
    pi_server.post_many(gen.series("mm: add bar", 3))
    settings = intake_settings(tmp_path, pi_server, max_patches=2)
    poll_once(settings, db)
    (row,) = series_by_msgid(db).values()
    assert row.state == "skipped"
    assert row.reason == "too big: 3 patches, over intake.max_patches = 2"
