"""Intake benchmark: throughput on a real month of list mail, and inbox-to-record delay.

Usage: .venv/bin/python bench/intake.py [--mbox PATH] [--samples N]

1. Imports the mbox (default ../shared/data/virtualization-2023-05.mbox) into a
   fresh public-inbox served on loopback, then times one `poll_once` over it:
   messages/second for the whole pass (fetch, parse, record, assemble series
   through b4) and for the record-only part.
2. Delivers single messages with public-inbox-mda and times how long until
   `poll_once` has recorded each (a poll started right after delivery).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select

from bot.core.runner import Runner
from bot.demo.inbox import IMPORT_MBOX
from bot.intake import lore
from bot.intake import poll as intake
from state.db import Database
from state.models import Message
from tests.support.mailgen import MailGen
from tests.support.pi import PublicInboxServer, intake_settings

DEFAULT_MBOX = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "virtualization-2023-05.mbox"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mbox", type=Path, default=DEFAULT_MBOX)
    ap.add_argument("--samples", type=int, default=10)
    args = ap.parse_args()
    if not args.mbox.exists():
        print(f"missing {args.mbox}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lorebot-bench-") as tmp:
        root = Path(tmp)
        server = PublicInboxServer(root / "pi")
        t = time.monotonic()
        server.runner.run(
            ["perl", "-e", IMPORT_MBOX, server.name],
            input=args.mbox.read_bytes(),
            check=True,
            timeout=900,
        )
        print(f"import into public-inbox: {time.monotonic() - t:.2f} s")
        server.start()
        try:
            throughput(root, server)
            delay(root, server, args.samples)
        finally:
            server.stop()
    return 0


def throughput(root: Path, server: PublicInboxServer) -> None:
    settings = intake_settings(root / "a", server)
    db = Database(settings.database_url)
    lst, runner = settings.lists[0], Runner()
    t = time.monotonic()
    n = 0
    for batch in lore.new_mail(settings, db, lst, runner):
        n += sum(intake.record_messages(settings, db, lst, batch.mails).values())
        lore.set_cursor(db, lst.name, batch.epoch.number, batch.last)
    record = time.monotonic() - t
    t = time.monotonic()
    states = intake.assemble_pending(settings, db, lst)
    assemble = time.monotonic() - t
    print(
        f"record only (fetch+parse+store): {n} messages in {record:.2f} s = {n / record:.0f} msg/s"
    )
    print(f"series assembly (b4 over loopback): {assemble:.2f} s, {dict(states)}")
    print(f"whole pass: {n / (record + assemble):.0f} msg/s")
    db.dispose()
    fresh = intake_settings(root / "b", server)
    db = Database(fresh.database_url)
    t = time.monotonic()
    report = intake.poll_once(fresh, db)
    print(
        f"poll_once from scratch: {report.new_messages} messages in "
        f"{time.monotonic() - t:.2f} s = {report.new_messages / (time.monotonic() - t):.0f} "
        "msg/s"
    )
    db.dispose()


def delay(root: Path, server: PublicInboxServer, samples: int) -> None:
    settings = intake_settings(root / "b", server)
    db = Database(settings.database_url)
    gen = MailGen(root / "gen", server.address)
    idle = []
    for _ in range(3):
        t = time.monotonic()
        intake.poll_once(settings, db)
        idle.append(time.monotonic() - t)
    waits, mdas = [], []
    for i in range(samples):
        raw = gen.series(f"bench: change {i}", 1, cover=False)[0]
        t0 = time.monotonic()
        server.deliver(raw)
        t1 = time.monotonic()
        before = _count(db)
        intake.poll_once(settings, db)
        assert _count(db) == before + 1
        mdas.append(t1 - t0)
        waits.append(time.monotonic() - t1)
    print(f"idle poll (nothing new): median {statistics.median(idle) * 1000:.0f} ms")
    print(f"public-inbox-mda delivery: median {statistics.median(mdas) * 1000:.0f} ms")
    print(
        f"delivered -> recorded and series queued, poll started right away: "
        f"median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms "
        f"({samples} samples); in service add up to poll_interval="
        f"{settings.intake.poll_interval} s of waiting"
    )
    db.dispose()


def _count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Message)) or 0)


if __name__ == "__main__":
    sys.exit(main())
