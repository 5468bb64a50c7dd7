"""`lorebot check MSGID_OR_LORE_URL [--json] [--send]`: the whole pipeline, in the foreground."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import select

from bot.cli.progress import ProgressPrinter
from bot.cli.startup import open_database
from bot.core.states import SeriesState
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
    from bot.intake.series import load_target
    from bot.run import claims, queue
    from bot.run.delivery import Mailer
    from bot.run.pipeline import outcome_json
    from bot.run.worker import ensure_series_row, run_series, series_url

    try:
        lst, series, parent = load_target(settings, args.target, args.list_name)
    except (TargetError, LookupError) as e:
        print(f"lorebot: {e}", file=sys.stderr)
        return 2
    db = open_database(settings)
    series_id = ensure_series_row(db, lst.name, series)
    worker = claims.holder_name("cli")
    queue.recover_interrupted(db)  # a claim left by a dead process is not a reason to wait
    if not queue.claim(db, series_id, worker):
        print(
            f"lorebot: {series.msgid} is being checked right now by "
            f"{queue.holder(db, series_id)}; its result will be on "
            f"{series_url(settings, series.msgid)}",
            file=sys.stderr,
        )
        return 3
    progress = ProgressPrinter()
    try:
        with claims.held(worker), claims.heartbeat(db, settings.service.heartbeat_seconds):
            result = run_series(
                settings,
                db,
                series_id,
                worker,
                fetched=(series, parent),
                progress=progress,
                queue_mail=args.send,
            )
    except Exception as e:  # the database gave out under us: give the series back
        queue.release(
            db, series_id, SeriesState.QUEUED, f"manual check stopped: {type(e).__name__}"
        )
        print(f"lorebot: the check stopped: {e}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    if result is None:
        print(
            f"lorebot: the check did not complete: {queue.reason(db, series_id)}", file=sys.stderr
        )
        return 1
    replies = [reply_json(d) for d in result.drafts]
    if args.send and result.drafts:
        Mailer(settings, db).deliver_pending()
        recorded = reply_states(db, series_id)
        for reply, d in zip(replies, result.drafts, strict=True):
            reply["msgid"], reply["state"] = recorded.get(
                (d.in_reply_to, d.digest), (None, "not queued")
            )
    if args.json:
        print(json.dumps(outcome_json(result.outcome, replies), indent=2))
    else:
        _print_text(result.outcome, result.drafts)
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
    for s in outcome.suites:
        counts = [
            f"{w} {'/'.join(map(str, c)) if c else st}"
            for w, c, st in (("base", s.base, s.state_base), ("after", s.after, s.state_after))
        ]
        print(f"  tests   {s.suite}: {', '.join(counts)} (pass/fail/skip)")
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
