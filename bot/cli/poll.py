"""`lorebot poll [--once] [--json]`: take in new list mail and print what is new."""

from __future__ import annotations

import argparse
import json
import sys
import time

from bot.cli.startup import open_database
from bot.core.runner import CommandError, Runner
from bot.intake import lore
from bot.intake.poll import PollReport, poll_once
from config.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("poll", help="take in new messages from the lists")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--json", action="store_true", help="print each pass as one JSON object")
    p.add_argument(
        "--skip-history",
        action="store_true",
        help="a list never polled starts at its inbox's current end, "
        "instead of taking in its whole archive",
    )
    p.set_defaults(func=run)


def as_text(report: PollReport) -> str:
    lines = []
    for p in report.lists:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(p.kinds.items())) or "nothing new"
        lines.append(f"{p.list_name}: {p.new_messages} new message(s): {kinds} ({p.seconds:.2f} s)")
        if p.series:
            lines.append("  series: " + ", ".join(f"{s} {n}" for s, n in sorted(p.series.items())))
        if p.error:
            lines.append(f"  error: {p.error}")
    return "\n".join(lines) or "no lists configured"


def run(args: argparse.Namespace, settings: Settings) -> int:
    db = open_database(settings)
    try:
        if args.skip_history:
            runner = Runner()
            for lst in settings.lists:
                try:
                    lore.skip_history(settings, db, lst, runner)
                except (lore.InboxError, CommandError) as e:
                    print(f"lorebot poll: {e}", file=sys.stderr)
                    return 1
        while True:
            report = poll_once(settings, db)
            print(json.dumps(report.as_dict()) if args.json else as_text(report), flush=True)
            if args.once:
                return 1 if report.errors else 0
            time.sleep(settings.intake.poll_interval)
    except KeyboardInterrupt:
        return 0
    finally:
        db.dispose()
