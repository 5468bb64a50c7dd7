"""Faults benchmark: what a big patch mail costs intake, and delivery through a slow relay.

Usage: .venv/bin/python bench/faults.py [--sizes 1,10,50] [--raised-max 10]
                                        [--replies 20] [--delay 0.5] [--timeout 900]

1. Intake of one lone patch mail of 1, 10 and 50 MB: a fresh public-inbox on
   loopback holds it, one `poll_once` takes it in. Each case runs in a child
   process of its own, so its time and peak RSS are its alone. "bounded" is
   with the default intake bounds (the mail is refused from its headers);
   "raised" sets every bound to 1 GiB, as it was before the bounds: the
   mail is parsed, and b4 assembles the series and makes its `git am` mail.
   The child only polls; the parent makes the mail and serves the inbox.
   Raised cases above --raised-max MB are left out (b4 is quadratic: the
   issue measured 12 MB at 115-155 s); a case past --timeout is reported so.
2. Delivery of --replies queued replies to one aiosmtpd whose DATA takes
   --delay seconds, and to the same server without the delay: replies/s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MB = 1024 * 1024
GiB = 1024 * MB


def intake_case(root: Path, url: str, name: str, raised: bool) -> dict[str, object]:
    """One poll of a prepared inbox (runs in the child process, which does nothing else)."""
    from bot.intake.poll import poll_once
    from config.settings import load_settings
    from state.db import Database
    from state.models import SeriesRow

    bounds = {"max_message_bytes": GiB, "max_patch_bytes": GiB} if raised else {}
    settings = load_settings(
        None,
        paths={"state": str(root / "state"), "cache": str(root / "cache")},
        lists=[{"name": name, "url": url}],
        trees=[],
        intake=bounds,
    )
    db = Database(settings.database_url)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.monotonic()
    report = poll_once(settings, db)
    seconds = time.monotonic() - t
    with db.session() as s:
        rows = [(r.state, r.reason[:90]) for r in s.query(SeriesRow)]
    db.dispose()
    return {
        "seconds": round(seconds, 2),
        "errors": list(report.errors),
        "series": rows,
        # the poll and b4 run in this process (git and public-inbox are other processes)
        "rss_growth_mb": round(
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024, 1
        ),
    }


def run_intake(sizes: list[int], raised_max: int, timeout: float) -> None:
    from tests.support.mailgen import MailGen
    from tests.support.pi import PublicInboxServer

    print("intake of one lone patch mail: one poll_once, in a process of its own")
    print("  (RSS growth: the polling process's peak RSS over what it had before the poll)")
    for size in sizes:
        for raised in (False, True):
            label = f"{size:>3} MB {'raised' if raised else 'bounded':<7}"
            if raised and size > raised_max:
                print(f"  {label}: not run (over --raised-max {raised_max} MB)")
                continue
            with tempfile.TemporaryDirectory(prefix="lorebot-bench-") as tmp:
                root = Path(tmp)
                server = PublicInboxServer(root / "pi")
                # indexed: in the raised case b4 fetches its thread over HTTP
                server.post_many([MailGen(root / "gen").big_patch(size * MB)])
                server.start()
                try:
                    argv = [sys.executable, __file__, "--case"]
                    argv += [str(root), server.url, server.name, str(int(raised))]
                    try:
                        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
                    except subprocess.TimeoutExpired:
                        print(f"  {label}: over {timeout:.0f} s (stopped)", flush=True)
                        continue
                finally:
                    server.stop()
            if r.returncode != 0:
                print(f"  {label}: failed: {r.stderr.strip()[-400:]}")
                continue
            out = json.loads(r.stdout.strip().splitlines()[-1])
            print(
                f"  {label}: {out['seconds']:>7.2f} s  RSS +{out['rss_growth_mb']:>6.1f} MB  "
                f"series {out['series']}",
                flush=True,
            )


def run_delivery(n: int, delay: float) -> None:
    from bot.run.delivery import Mailer
    from state.db import Database
    from state.models import ReplyRow
    from tests.support.replies import make_settings
    from tests.support.smtpd import SmtpServer

    print(f"delivery of {n} replies through one SMTP server (DATA delay per reply)")
    for d in (0.0, delay):
        with (
            tempfile.TemporaryDirectory(prefix="lorebot-bench-") as tmp,
            SmtpServer(data_delay=d) as smtp,
        ):
            settings = make_settings(
                Path(tmp),
                mode="smtp",
                smtp_host=smtp.host,
                smtp_port=smtp.port,
                rate_per_hour=100_000,
                rate_per_author_per_hour=100_000,
            )
            db = Database(settings.database_url)
            with db.session() as s:
                for i in range(n):
                    msgid = f"bench-{i}@lorebot.example.org"
                    raw = (
                        f"From: {settings.mail.sender}\r\nTo: dev{i}@example.org\r\n"
                        f"Subject: Re: [PATCH] x\r\nMessage-ID: <{msgid}>\r\n"
                        "Date: Mon, 07 Dec 2026 06:00:00 +0000\r\n\r\nhello\r\n"
                    )
                    s.add(
                        ReplyRow(
                            msgid=msgid,
                            to_addrs=[f"dev{i}@example.org"],
                            author_email=f"dev{i}@example.org",
                            subject="Re: [PATCH] x",
                            raw=raw,
                            digest=f"d{i}",
                            state="pending",
                        )
                    )
            t = time.monotonic()
            Mailer(settings, db).deliver_pending()
            seconds = time.monotonic() - t
            got = len(smtp.received)
            db.dispose()
        print(
            f"  DATA delay {d:.2f} s: {got}/{n} delivered in {seconds:.2f} s "
            f"= {got / seconds:.1f} replies/s"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,50", help="patch mail sizes in MB")
    ap.add_argument("--raised-max", type=int, default=10, help="largest raised case, MB")
    ap.add_argument("--replies", type=int, default=20)
    ap.add_argument("--delay", type=float, default=0.5, help="seconds per DATA")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per intake case")
    ap.add_argument("--case", nargs=4, help=argparse.SUPPRESS)  # root url name raised
    args = ap.parse_args()
    if args.case:
        root, url, name, raised = args.case
        print(json.dumps(intake_case(Path(root), url, name, raised == "1")))
        return 0
    run_intake([int(x) for x in args.sizes.split(",")], args.raised_max, args.timeout)
    run_delivery(args.replies, args.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
