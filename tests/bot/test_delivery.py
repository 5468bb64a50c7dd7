"""Delivery under trouble, against real SMTP servers on loopback.

Temporary refusals are retried with backoff, a refused recipient is left out
alone, a relay that refuses us is a fault shown on the page with nothing
dropped, a silent relay costs one short timeout, and claims keep two
deliverers from sending one reply twice.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.run.delivery import Mailer, recover_sending, retry_delay
from bot.web import create_app
from state.db import Database
from state.models import FaultRow, ReplyRow
from tests.support.mailer import Clock, add_series, drafts_for, mailer, parse
from tests.support.replies import (
    applied_on_mm,
    balloon_series,
    build_error,
    removed_member,
    w1_warning,
)
from tests.support.silent import SilentServer
from tests.support.smtpd import SmtpServer

EVERYONE = [
    "dana.kovac@example.org",
    "akpm@linux-foundation.org",
    "david@example.com",
    "linux-mm@kvack.org",
    "linux-kernel@vger.kernel.org",
    "linuxppc-dev@lists.ozlabs.org",
]


def queue_three(m: Mailer, db: Database) -> list[ReplyRow]:
    """Three replies (a summary and two patches) of one series, pending."""
    findings = [build_error(2), w1_warning(2), removed_member(3)]
    return m.queue(add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), findings))


def reply_states(db: Database) -> list[str]:
    with db.session() as s:
        return [r.state for r in s.scalars(select(ReplyRow).order_by(ReplyRow.id))]


def test_451_on_rcpt_is_retried_after_backoff_and_sent_once(tmp_path: Path, db: Database) -> None:
    clock = Clock()
    with SmtpServer(answers={"RCPT": ["451 4.3.0 try again later"]}) as server:
        m = mailer(tmp_path, db, server, clock, retry_seconds=60)
        (row,) = m.queue(
            add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
        )
        first = m.deliver_pending()
        assert first.sent == [] and first.dropped == [] and "451" in first.failed[0][1]
        with db.session() as s:
            got = s.get(ReplyRow, row.id)
            assert got is not None and got.state == "pending" and got.attempts == 1
            assert got.not_before == clock.now + timedelta(seconds=60)
        assert m.deliver_pending().sent == []  # still backing off: not tried again
        clock.now += timedelta(seconds=61)
        assert m.deliver_pending().sent == [row.msgid]
        assert m.deliver_pending().sent == []
        (received,) = server.received
        assert received.rcpt_tos == EVERYONE  # no one was left out by the 451
        assert parse(received)["Message-ID"] == f"<{row.msgid}>"


def test_backoff_doubles_up_to_the_limit() -> None:
    assert [retry_delay(60, 600, n).total_seconds() for n in (1, 2, 3, 4, 5, 99)] == [
        60,
        120,
        240,
        480,
        600,
        600,
    ]


def test_550_for_one_recipient_the_others_get_it(tmp_path: Path, db: Database) -> None:
    with SmtpServer(refuse={"akpm@linux-foundation.org"}) as server:
        m = mailer(tmp_path, db, server)
        (row,) = m.queue(
            add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
        )
        assert m.deliver_pending().sent == [row.msgid]
        (received,) = server.received
        assert received.rcpt_tos == [a for a in EVERYONE if a != "akpm@linux-foundation.org"]
    with db.session() as s:
        got = s.get(ReplyRow, row.id)
        assert got is not None and got.state == "sent"
        assert got.reason.startswith("refused: akpm@linux-foundation.org (550")


def test_530_on_mail_is_a_fault_nothing_dropped_page_says_so(tmp_path: Path, db: Database) -> None:
    with SmtpServer(answers={"MAIL": ["530 5.7.0 Authentication required"] * 2}) as server:
        m = mailer(tmp_path, db, server)
        rows = queue_three(m, db)
        report = m.deliver_pending()
        # the pass stops at the first refusal: the others would meet the same
        assert report.sent == [] and report.dropped == [] and "530" in report.fault
        assert server.commands == ["MAIL"]
        assert reply_states(db) == ["pending"] * 3
        with db.session() as s:
            (fault,) = s.scalars(select(FaultRow))
            assert fault.name == "mail" and "530 5.7.0 Authentication required" in fault.message

        client = TestClient(create_app(m.settings, db))
        page = client.get("/").text
        assert 'class="fault"' in page and "530 5.7.0 Authentication required" in page
        assert 'lorebot_fault{name="mail"} 1' in client.get("/metrics").text
        assert client.get("/api/status").json()["faults"][0]["name"] == "mail"

        # the relay is fixed (here: its scripted refusals are used up); everything leaves
        assert "530" in m.deliver_pending().fault
        assert sorted(m.deliver_pending().sent) == sorted(r.msgid for r in rows)
        assert len(server.received) == 3
        assert 'lorebot_fault{name="mail"} 0' in client.get("/metrics").text


def test_every_recipient_refused_is_a_fault_not_a_drop(tmp_path: Path, db: Database) -> None:
    # "554 relay access denied" for every address is the relay refusing us
    with SmtpServer(refuse=set(EVERYONE)) as server:
        m = mailer(tmp_path, db, server)
        m.queue(
            add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
        )
        report = m.deliver_pending()
        assert report.dropped == [] and "every recipient refused" in report.fault
        assert reply_states(db) == ["pending"]


def test_5xx_after_data_drops_that_reply_only(tmp_path: Path, db: Database) -> None:
    with SmtpServer(answers={"DATA": ["554 5.6.0 message content rejected"]}) as server:
        m = mailer(tmp_path, db, server)
        queue_three(m, db)
        report = m.deliver_pending()
        assert len(report.dropped) == 1 and "554 5.6.0" in report.dropped[0][1]
        assert len(report.sent) == 2 and len(server.received) == 2
        assert reply_states(db) == ["dropped", "sent", "sent"]


def test_a_relay_that_never_greets_costs_one_short_timeout(tmp_path: Path, db: Database) -> None:
    with SilentServer() as silent:
        m = mailer(
            tmp_path,
            db,
            silent,  # type: ignore[arg-type]
            smtp_timeout=0.3,
        )
        queue_three(m, db)
        report = m.deliver_pending()
        # one connection: the pass gives up on the server, not on each reply in turn
        assert silent.accepted == 1
        assert len(report.failed) == 1 and "timed out" in report.failed[0][1]
        assert reply_states(db) == ["pending"] * 3


def test_two_deliverers_on_one_database_send_each_reply_once(tmp_path: Path, db: Database) -> None:
    with SmtpServer(data_delay=0.05) as server:
        ms = [mailer(tmp_path, Database(db.url), server, rate_per_hour=100) for _ in range(2)]
        rows = queue_three(ms[0], db)
        start = threading.Barrier(2)

        def deliver(m: Mailer) -> None:
            start.wait()
            m.deliver_pending()

        threads = [threading.Thread(target=deliver, args=(m,)) for m in ms]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = sorted(parse(r)["Message-ID"] for r in server.received)
        assert ids == sorted(f"<{r.msgid}>" for r in rows)  # each once, none twice
        assert reply_states(db) == ["sent"] * 3
        for m in ms:
            m.db.dispose()


def dead_holder() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}/{proc.pid}/mail"


def test_a_reply_left_sending_by_a_dead_process_is_sent_again(tmp_path: Path, db: Database) -> None:
    with SmtpServer() as server:
        m = mailer(tmp_path, db, server)
        (row,) = m.queue(
            add_series(db), None, drafts_for(m, balloon_series(), applied_on_mm(), [build_error()])
        )
        alive = f"{socket.gethostname()}/{os.getppid()}/mail"  # our parent lives on
        for holder, expect in ((alive, []), (dead_holder(), [row.msgid])):
            with db.session() as s:
                got = s.get(ReplyRow, row.id)
                assert got is not None
                got.state, got.claimed_by = "sending", holder
            assert recover_sending(db, timedelta(minutes=2)) == expect
            assert m.deliver_pending().sent == expect
        (received,) = server.received
        assert parse(received)["Message-ID"] == f"<{row.msgid}>"
