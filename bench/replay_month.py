"""Replay a month of a real list: every series through the run lorebot serve and check use.

Usage: nice -n 10 .venv/bin/python bench/replay_month.py [--mbox FILE] [--limit N]
       [--minutes M] [--arches a,b,..] [--states S] [--out DIR] [--json FILE]

Imports the mbox (default: ../shared/data/linux-hwmon-2024-12.mbox beside the
repository) into a local public-inbox started here, takes it in with one poll,
and runs each queued series, oldest first, through `run_series` (what `lorebot
check` runs) on linux-source-6.12, imported once into the test cache
(`LOREBOT_TEST_CACHE`): the latest revisions and the earlier ones the month
superseded (the service checked each as it came; `--states queued` runs the
latest only). The mails it would send are written to `OUT/mails/`,
one file each, and never sent; the kernel test robot's replies in the mbox are
listed in `OUT/robot.txt` beside them, as partial ground truth.

Prints one row per series (state, applied, findings, mailed findings, mails,
minutes) and the totals; `--limit` stops after N series, `--minutes` starts
no series after M minutes, `--arches` narrows the build (default: the
settings' default arches).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import mailbox
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from bot.demo.inbox import IMPORT_MBOX, PublicInboxServer
from bot.demo.run import ensure_tree
from bot.intake.poll import poll_once
from bot.report.policy import mailable
from bot.report.render import ReplyDraft
from bot.run import claims, queue
from bot.run.worker import run_series
from config.settings import BuildSettings, Settings, load_settings
from state.db import Database
from state.models import SeriesRow
from tests.support import kernel

REPO = Path(__file__).resolve().parents[1]
MBOX = REPO.parent / "shared" / "data" / "linux-hwmon-2024-12.mbox"
LIST = {"name": "linux-hwmon", "address": "linux-hwmon@vger.kernel.org"}


def replay_settings(out: Path, url: str, arches: list[str]) -> Settings:
    return load_settings(
        None,
        paths={"state": str(out / "state"), "cache": str(kernel.test_cache())},
        lists=[{**LIST, "url": url, "trees": ["linux"]}],
        trees=[{"name": "linux", "url": "", "branches": ["master"]}],
        build=BuildSettings(arches=arches).model_dump(),
        mail={"mode": "outbox", "sender": "lorebot <lorebot@localhost>"},
    )


def robot_replies(mbox: Path) -> list[str]:
    """One block per kernel test robot mail: what it answers, and its diagnostics."""
    out = []
    for msg in mailbox.mbox(str(mbox), factory=None):
        if "lkp@intel.com" not in str(msg.get("From", "")):
            continue
        parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
        body = parsed.get_body(("plain",))
        text = str(body.get_content()) if body is not None else ""
        hits = [
            ln.strip()
            for ln in text.splitlines()
            if re.search(r": (fatal )?(error|warning):|undefined reference", ln)
        ]
        out.append(
            "\n".join(
                [
                    f"Subject: {parsed['Subject']}",
                    f"In-Reply-To: {parsed['In-Reply-To']}",
                    *(f"  {h}" for h in dict.fromkeys(hits)),
                ]
            )
        )
    return out


def write_mail(dest: Path, n: int, d: ReplyDraft) -> None:
    name = f"{n:03d}-{d.kind}" + (f"-p{d.patch}" if d.patch else "") + ".txt"
    head = [
        f"To: {', '.join(d.to)}",
        f"Cc: {', '.join(d.cc)}",
        f"In-Reply-To: <{d.in_reply_to}>",
        f"Subject: {d.subject}",
    ]
    (dest / name).write_text("\n".join(head) + "\n\n" + d.body)


def month_inbox(out: Path, mbox: Path) -> PublicInboxServer:
    """A public-inbox of the list with the month's mails, started on loopback."""
    server = PublicInboxServer(out / "pi", name=LIST["name"], address=LIST["address"])
    server.runner.run(
        ["perl", "-e", IMPORT_MBOX, server.name], input=mbox.read_bytes(), check=True, timeout=900
    )
    server.start()
    return server


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mbox", type=Path, default=MBOX)
    ap.add_argument("--limit", type=int, default=0, help="stop after N series (0: all)")
    ap.add_argument(
        "--minutes", type=float, default=0, help="start no series after M minutes (0: no stop)"
    )
    ap.add_argument("--arches", default=",".join(BuildSettings().arches))
    ap.add_argument(
        "--states",
        default="queued,superseded",
        help="which series after intake to run: the latest revisions are queued; the "
        "earlier ones, superseded within the month, were each checked when they came",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.mbox.exists():
        print(f"{args.mbox} missing (real archive data lives in ../shared/data)", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="lorebot-replay-"))
    mails = out / "mails"
    mails.mkdir(parents=True, exist_ok=True)
    (out / "robot.txt").write_text("\n\n".join(robot_replies(args.mbox)) + "\n")
    t_start = time.monotonic()
    server = month_inbox(out, args.mbox)
    settings = replay_settings(out, server.url, args.arches.split(","))
    ensure_tree(settings, print)
    db = Database(settings.database_url)
    rows: list[dict[str, object]] = []
    try:
        report = poll_once(settings, db)
        with db.session() as s:
            all_rows = list(s.scalars(select(SeriesRow).order_by(SeriesRow.id)))
            intake = Counter(str(r.state) for r in all_rows)
            # what the service runs is queued; an incomplete series superseded by a newer
            # revision was never checked
            wanted = args.states.split(",")
            todo = [
                r.id
                for r in all_rows
                if r.state in wanted and (r.complete or r.state != "superseded")
            ]
        print(
            f"intake: {report.new_messages} messages, {len(all_rows)} series "
            f"({dict(intake)}); running {min(len(todo), args.limit or len(todo))}",
            flush=True,
        )
        worker = claims.holder_name("replay")
        for sid in todo[: args.limit or None]:
            if args.minutes and time.monotonic() - t_start > args.minutes * 60:
                print(f"stopped after {args.minutes:g} minutes (--minutes)", flush=True)
                break
            queue.requeue(db, sid)  # a superseded revision too: the service saw it first
            if not queue.claim(db, sid, worker):
                continue
            t0 = time.monotonic()
            with claims.held(worker):
                result = run_series(settings, db, sid, worker, queue_mail=False)
            minutes = (time.monotonic() - t0) / 60
            with db.session() as s:
                row = s.get(SeriesRow, sid)
                assert row is not None
                state, reason, subject, msgid = row.state, row.reason, row.subject, row.msgid
            o = result.outcome if result else None
            drafts = result.drafts if result else []
            for d in drafts:
                write_mail(mails, len(rows) + 1, d)
            lst = settings.lists[0]
            entry = {
                "n": len(rows) + 1,
                "msgid": msgid,
                "subject": subject,
                "state": str(state),
                "reason": reason,
                "applied": bool(o and o.applied.ok),
                "base": f"{o.applied.tree}/{o.applied.branch}" if o and o.applied.ok else "",
                "findings": len(o.findings) if o else 0,
                "mailed_findings": len(mailable(o.findings, lst.mail)) if o else 0,
                "by_check": dict(Counter(f.check for f in o.findings)) if o else {},
                "mails": len(drafts),
                "variants": len(o.variants) if o else 0,
                "checks": dict(o.check_status) if o else {},
                "minutes": round(minutes, 2),
            }
            rows.append(entry)
            print(
                f"{entry['n']:>3} {entry['state']:<8} applied={int(bool(entry['applied']))} "
                f"findings={entry['findings']:<3} mailed={entry['mailed_findings']:<3} "
                f"mails={entry['mails']} variants={entry['variants']} {entry['minutes']:>5} min  "
                f"{subject[:60]}" + (f"\n      {reason[:150]}" if reason else ""),
                flush=True,
            )
    finally:
        server.stop()
        db.dispose()
    totals = {
        "series_in_month": len(all_rows),
        "run": len(rows),
        "applied": sum(1 for r in rows if r["applied"]),
        "held": sum(1 for r in rows if r["state"] == "held"),
        "failed": sum(1 for r in rows if r["state"] == "failed"),
        **{k: sum(int(str(r[k])) for r in rows) for k in ("findings", "mailed_findings", "mails")},
        "minutes": round((time.monotonic() - t_start) / 60, 1),
    }
    print("\ntotals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    print(f"mails in {mails}; the robot's replies in {out / 'robot.txt'}")
    (out / "replay.json").write_text(json.dumps({"rows": rows, "totals": totals}, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "totals": totals}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
