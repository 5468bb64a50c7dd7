"""`lorebot check MSGID_OR_LORE_URL [--json] [--send]`: the whole pipeline, in the foreground."""

from __future__ import annotations

import argparse
import json
import sys
import time

from sqlalchemy import select

from bot.cli.progress import ProgressPrinter
from bot.intake.target import TargetError, add_target_arguments
from bot.report.render import ReplyDraft
from bot.run.pipeline import CheckOutcome
from config.settings import Settings
from state.db import Database
from state.models import ReplyRow


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="apply and check one series now; print the replies")
    add_target_arguments(p)
    p.add_argument("--send", action="store_true", help="send the replies (configured transport)")
    p.set_defaults(func=cmd_check)


def reply_json(d: ReplyDraft) -> dict[str, object]:
    """One reply in `check --json` (msgid and state are filled once it is queued)."""
    return {
        "kind": d.kind,
        "patch": d.patch,
        "in_reply_to": d.in_reply_to,
        "to": list(d.to),
        "cc": list(d.cc),
        "subject": d.subject,
        "body": d.body,
        "msgid": None,
        "state": "draft",
    }


def reply_states(db: Database, series_id: int) -> dict[tuple[str, str], tuple[str, str]]:
    """(in_reply_to, digest) -> (Message-ID, state) of the series' recorded replies."""
    with db.session() as s:
        rows = s.scalars(select(ReplyRow).where(ReplyRow.series_id == series_id))
        return {(r.in_reply_to, r.digest): (r.msgid, r.state) for r in rows}


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.intake.b4adapter import guess_base
    from bot.intake.series import load_target
    from bot.run.delivery import Mailer
    from bot.run.pipeline import check_series, outcome_json
    from bot.run.worker import draft_replies, finish_run, record_outcome, start_manual_run

    try:
        lst, series, parent = load_target(settings, args.target, args.list_name)
    except (TargetError, LookupError) as e:
        print(f"lorebot: {e}", file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    series_id, run_id, log_dir = start_manual_run(settings, db, lst.name, series)
    progress = ProgressPrinter()
    start = time.monotonic()
    try:
        outcome = check_series(
            settings,
            series,
            lst,
            parent=parent,
            log_dir=log_dir,
            progress=progress,
            guess=guess_base,
        )
    except BaseException as e:
        finish_run(
            db, series_id, run_id, "failed", f"{type(e).__name__}: {e}", time.monotonic() - start
        )
        raise
    finally:
        progress.close()
    record_outcome(db, run_id, outcome)
    drafts = draft_replies(settings, outcome)
    replies = [reply_json(d) for d in drafts]
    if args.send and drafts:
        mailer = Mailer(settings, db)
        mailer.queue(series_id, run_id, drafts)
        mailer.deliver_pending()
        recorded = reply_states(db, series_id)
        for reply, d in zip(replies, drafts, strict=True):
            reply["msgid"], reply["state"] = recorded.get(
                (d.in_reply_to, d.digest), (None, "not queued")
            )
    finish_run(db, series_id, run_id, "done", "", time.monotonic() - start)
    if args.json:
        print(json.dumps(outcome_json(outcome, replies), indent=2))
    else:
        _print_text(outcome, drafts)
    return 0


def _print_text(outcome: CheckOutcome, drafts: list[ReplyDraft]) -> None:
    from bot.cli.apply import print_apply

    print_apply(outcome.applied)
    for name, status in outcome.check_status.items():
        print(f"  check {name:<11} {status} ({outcome.timings.get(name, 0):.1f}s)")
    for v in outcome.variants:
        print(f"  built   {v.arch} {v.config}: {len(v.objects)} object(s)")
    for v in outcome.dropped:
        print(f"  dropped {v.arch} {v.config}: {v.reason}")
    for n in outcome.notes:
        print(f"  note    {n.check}: {n.message}")
    if not drafts:
        print("\nno new findings: nothing to send")
    for d in drafts:
        print("\n" + "=" * 72)
        print(f"To: {', '.join(d.to)}")
        if d.cc:
            print(f"Cc: {', '.join(d.cc)}")
        print(f"In-Reply-To: <{d.in_reply_to}>\nSubject: {d.subject}\n")
        print(d.body)
