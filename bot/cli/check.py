"""`lorebot check MSGID_OR_LORE_URL|FILE...|- [--json] [--send]`: the whole pipeline, in the
foreground, on a posted series or on local mail (an mbox, patch files, standard input)."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import select

from bot.cli.progress import ProgressPrinter
from bot.cli.startup import open_database
from bot.core.models import Series
from bot.core.states import SeriesState
from bot.intake.target import TargetError
from bot.report.render import ReplyDraft
from bot.run.pipeline import CheckOutcome
from config.settings import ListSettings, Settings
from state.db import Database
from state.models import ReplyRow


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="apply and check one series now (posted, or local mail); print the replies",
    )
    p.add_argument(
        "target",
        nargs="+",
        metavar="MSGID_OR_LORE_URL_OR_FILES",
        help="Message-ID or lore URL of any message of the series; or an mbox or patch "
        "files of a series not posted yet ('-': read the mbox from standard input)",
    )
    p.add_argument(
        "--list", dest="list_name", help="configured list to ask (for a bare Message-ID)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
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
    from bot.run import claims, queue
    from bot.run.delivery import Mailer
    from bot.run.pipeline import outcome_json
    from bot.run.worker import ensure_series_row, run_series, series_url

    try:
        lst, series, parent = _load(settings, args.target, args.list_name)
    except (TargetError, LookupError, OSError) as e:
        print(f"lorebot: {e}", file=sys.stderr)
        return 2
    db = open_database(settings)
    from bot.run.treesync import sync_missing

    # a fresh cache: sync the list's trees that were never synced rather than hold
    for synced in sync_missing(settings, db, list(lst.trees)):
        print(
            f"lorebot: tree {synced.tree} was never synced: "
            + ("synced" if synced.ok else f"sync failed: {synced.error}"),
            file=sys.stderr,
        )
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


def _load(
    settings: Settings, targets: list[str], list_name: str | None
) -> tuple[ListSettings, Series, Series | None]:
    """The series named on the command line: posted (Message-ID, lore URL) or local mail."""
    from bot.intake.local import is_local_target, load_local, local_list
    from bot.intake.series import load_target

    if is_local_target(targets):
        lst = local_list(settings, list_name)
        stdin = sys.stdin.buffer.read() if "-" in targets else b""
        return lst, load_local(settings, lst, targets, stdin), None
    return load_target(settings, targets[0], list_name)


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
