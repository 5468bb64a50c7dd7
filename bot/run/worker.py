"""A claimed series through the pipeline, every step recorded in the state tables."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from bot.core.models import Series
from bot.core.states import RunState, SeriesState
from bot.report.render import ReplyDraft
from bot.run.health import is_db_outage
from bot.run.pipeline import CheckOutcome, Progress, Stopped, check_series
from config.settings import ListSettings, Settings
from state.db import Database
from state.models import FindingRow, PatchRow, RunRow, SeriesRow, utcnow

log = logging.getLogger("lorebot.worker")


def series_url(settings: Settings, msgid: str) -> str:
    from urllib.parse import quote

    return f"{settings.web.base_url.rstrip('/')}/series/{quote(msgid, safe='@')}"


def draft_replies(
    settings: Settings, outcome: CheckOutcome, suppressed: Collection[str] = ()
) -> list[ReplyDraft]:
    """The replies a run's outcome calls for: none when nothing new was found, and none
    when a fault of ours left it incomplete (the series is held, never mailed). Findings
    whose fingerprint is `suppressed` (marked invalid by a reader) are not mailed."""
    from bot.report.policy import DEFAULT
    from bot.report.render import render_replies

    if outcome.fault or outcome.applied.skipped:
        return []
    lst = _list(settings, outcome.list_name) if outcome.list_name else None
    return render_replies(
        outcome.series,
        outcome.applied,
        [f for f in outcome.findings if f.fingerprint not in suppressed],
        settings,
        series_url(settings, outcome.series.msgid),
        policy=lst.mail if lst else DEFAULT,
        all_passed=outcome.all_passed,
        archive=lst.url if lst else "",
        uncompiled=outcome.uncompiled,
        parent=outcome.parent,
    )


def _list(settings: Settings, name: str) -> ListSettings | None:
    try:
        return settings.list_(name)
    except KeyError:
        return None


def load_for_run(settings: Settings, row: SeriesRow) -> tuple[Series, Series | None]:
    """The series (and a follow-up's parent) fetched fresh: trailers may have come in."""
    from bot.intake.series import load_with_parent

    lst = _list(settings, row.list_name)
    if lst is None:
        raise LookupError(f"list '{row.list_name}' is no longer configured")
    return load_with_parent(settings, lst, row.msgid)


def record_outcome(db: Database, run_id: int, outcome: CheckOutcome) -> None:
    a = outcome.applied
    with db.session() as s:
        run = s.get(RunRow, run_id)
        assert run is not None
        run.tree, run.branch, run.base_sha = a.tree, a.branch, a.base
        run.apply_ok, run.failed_patch, run.message = a.ok, a.failed_patch, a.message
        run.tried = [t.model_dump() for t in a.tried]
        run.patch_commits = [p.model_dump() for p in a.patches]
        run.checks = dict(outcome.check_status)
        run.timings = dict(outcome.timings)
        # facts about the run and the build plan: the page and the JSON show them
        run.notes = [n.model_dump(mode="json") for n in outcome.notes]
        run.plan = outcome.plan_json()
        for f in outcome.findings:
            run.findings.append(
                FindingRow(
                    check=f.check,
                    kind=f.kind,
                    severity=f.severity,
                    patch_index=f.patch,
                    file=f.file,
                    line=f.line,
                    message=f.message,
                    fingerprint=f.fingerprint,
                    data=f.model_dump(mode="json"),
                )
            )


def ensure_series_row(db: Database, list_name: str, series: Series) -> int:
    """The row of this series revision, created for a manual run if intake has not seen it."""
    from sqlalchemy import select

    with db.session() as s:
        row = s.scalars(
            select(SeriesRow).where(
                SeriesRow.list_name == list_name, SeriesRow.msgid == series.msgid
            )
        ).first()
        if row is None:
            row = SeriesRow(
                list_name=list_name,
                msgid=series.msgid,
                subject=series.subject,
                version=series.version,
                total=series.total,
                author=series.author,
                author_email=series.author_email,
                complete=series.complete,
                has_cover=series.cover is not None,
                base_commit=series.base_commit or "",
                state=SeriesState.QUEUED,
            )
            # its patches too: the page lists them, and b4-check finds a patch's series
            row.patches = [
                PatchRow(idx=p.index, msgid=p.msgid, subject=p.subject, author=p.author)
                for p in series.patches
            ]
            s.add(row)
            s.flush()
        return row.id


def set_step(db: Database, series_id: int, run_id: int, step: str) -> None:
    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        run = s.get(RunRow, run_id)
        if row:
            row.step = step
        if run:
            run.step = step
    log.info("series=%s run=%s step=%s", series_id, run_id, step)


@dataclass
class RunResult:
    """What one run produced: the outcome of the checks and the replies it drafted."""

    outcome: CheckOutcome
    drafts: list[ReplyDraft]


def run_series(
    settings: Settings,
    db: Database,
    series_id: int,
    worker: str,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    fetched: tuple[Series, Series | None] | None = None,
    progress: Progress | None = None,
    queue_mail: bool = True,
) -> RunResult | None:
    """Check one series claimed by `worker`: apply, checks, findings, replies; every step
    recorded. The one orchestration of a run: `lorebot serve`'s workers and `lorebot
    check` (in the foreground, with the series it already `fetched`) both call it.

    Any failure finishes the run with its reason; a database outage is re-raised (our
    fault: the caller gives the series back). With `queue_mail` off the replies are
    drafted and recorded nowhere (a manual check without --send).
    """
    from bot.intake.b4adapter import guess_base

    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        if row is None:
            return None
        run = RunRow(series_id=series_id, worker=worker, state=RunState.RUNNING, step="fetch")
        s.add(run)
        s.flush()
        run_id = run.id
        log_dir = settings.paths.logs / str(run_id)
        run.log_dir = str(log_dir)
        s.expunge(row)
    start = time.monotonic()
    try:
        series, parent = fetched or load_for_run(settings, row)
        outcome = check_series(
            settings,
            series,
            _list(settings, row.list_name),
            parent=parent,
            log_dir=Path(log_dir),
            should_stop=should_stop,
            on_step=lambda step: set_step(db, series_id, run_id, step),
            progress=progress or _quiet,
            guess=guess_base,
        )
        record_outcome(db, run_id, outcome)
        if outcome.fault:
            hold(settings, db, series_id, run_id, outcome.fault, time.monotonic() - start)
            return RunResult(outcome, [])
        if outcome.applied.skipped:  # not ours to check: recorded, never mailed
            finish_run(
                db,
                series_id,
                run_id,
                SeriesState.SKIPPED,
                outcome.applied.skipped,
                time.monotonic() - start,
                run_state=RunState.DONE,  # a result: the series is not ours
            )
            return RunResult(outcome, [])
        set_step(db, series_id, run_id, "report")
        from bot.intake.commands import invalid_fingerprints

        drafts = draft_replies(settings, outcome, invalid_fingerprints(db, series_id))
        if queue_mail and drafts:
            from bot.run.delivery import Mailer

            Mailer(settings, db).queue(series_id, run_id, drafts)
        finish_run(db, series_id, run_id, SeriesState.DONE, "", time.monotonic() - start)
        return RunResult(outcome, drafts)
    except Stopped:
        # draining: the series goes back to the queue and is redone from the start
        finish_run(
            db,
            series_id,
            run_id,
            SeriesState.QUEUED,
            "interrupted by shutdown",
            time.monotonic() - start,
            run_state=RunState.INTERRUPTED,
        )
    except Exception as e:
        if is_db_outage(e):
            raise  # our fault, not the series': the service requeues it (bot.queue.give_back)
        log.exception("series=%s run=%s failed", series_id, run_id)
        finish_run(
            db,
            series_id,
            run_id,
            SeriesState.FAILED,
            f"{type(e).__name__}: {e}",
            time.monotonic() - start,
        )
    except BaseException as e:  # Ctrl-C in a foreground check: the run still ends, with why
        finish_run(
            db,
            series_id,
            run_id,
            SeriesState.FAILED,
            f"interrupted: {type(e).__name__}",
            time.monotonic() - start,
        )
        raise
    return None


def _quiet(step: str, frac: float | None) -> None:
    return None


def hold(
    settings: Settings, db: Database, series_id: int, run_id: int, reason: str, seconds: float
) -> None:
    """Hold a series for a fault of ours: the run ends with the reason, the series waits
    for its retry (the delay doubles with each hold in a row), nothing is mailed."""
    from datetime import timedelta

    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        holds = (row.holds if row else 0) + 1
    delay = min(86400, settings.service.hold_retry_seconds * 2 ** min(holds - 1, 10))
    finish_run(
        db,
        series_id,
        run_id,
        SeriesState.HELD,
        f"held: {reason}",
        seconds,
        run_state=RunState.FAILED,
    )
    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        if row:
            row.retry_at = utcnow() + timedelta(seconds=delay)
            row.holds = holds
    log.warning("series=%s held: %s (retry in %d s)", series_id, reason, delay)


def finish_run(
    db: Database,
    series_id: int,
    run_id: int,
    state: str,
    reason: str,
    seconds: float,
    run_state: str | None = None,
) -> None:
    with db.session() as s:
        row = s.get(SeriesRow, series_id)
        run = s.get(RunRow, run_id)
        if run:
            run.state = run_state or (
                RunState.DONE if state == SeriesState.DONE else RunState.FAILED
            )
            run.finished_at = utcnow()
            run.error = reason
            run.timings = {**(run.timings or {}), "total": round(seconds, 2)}
        if row:
            row.state = state
            row.step = ""
            row.reason = reason
            row.claimed_by = ""
            if state == SeriesState.DONE:
                row.holds, row.retry_at = 0, None
