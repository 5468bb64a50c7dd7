"""One series through the pipeline: apply in a slot, run the checks, collect findings.

`check_series` is the pipeline without the database (the CLI's `check` uses
it); `bot.worker.run_series` records each step of it in the state tables.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.models import ApplyResult, Series
from bot.core.results import (
    CheckResult,
    CheckStatus,
    Coverage,
    Finding,
    Note,
    PlannedVariant,
    SuiteCounts,
    Uncompiled,
    dedupe,
)
from bot.core.runner import Runner
from bot.core.sandbox import SandboxUnavailable
from bot.trees.apply import BaseGuess, apply_series
from bot.trees.repo import Repo, acquire_slot
from checks.base import Check, CheckContext, sandbox_for
from checks.registry import load_check
from config.settings import ListSettings, Settings

log = logging.getLogger("lorebot.pipeline")

Progress = Callable[[str, float | None], None]


def _no_progress(step: str, frac: float | None) -> None:
    return None


@dataclass
class CheckOutcome:
    """What one pass over a series produced."""

    series: Series
    applied: ApplyResult
    list_name: str = ""
    parent: Series | None = None  # the series a follow-up goes on top of
    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)  # facts about the run, never mailed
    faults: list[str] = field(default_factory=list)  # checks that could not complete (ours)
    check_status: dict[str, str] = field(default_factory=dict)  # check -> "ok"/"error: …"
    results: dict[str, CheckStatus] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    variants: list[PlannedVariant] = field(default_factory=list)  # the build plan: built
    dropped: list[PlannedVariant] = field(default_factory=list)  # planned, not built
    uncompiled: list[Uncompiled] = field(default_factory=list)  # changed, compiled nowhere
    suites: list[SuiteCounts] = field(default_factory=list)  # runtime: test suites run
    coverage: Coverage | None = None  # build: changed lines some variant compiled

    def add(self, name: str, result: CheckResult) -> None:
        """Take in one check's result."""
        self.findings += result.findings
        self.notes += result.notes
        self.variants += result.variants
        self.dropped += result.dropped
        self.uncompiled += result.uncompiled
        self.suites += result.suites
        if result.coverage is not None:
            self.coverage = result.coverage
        self.results[name] = result.status
        if result.fault:
            self.faults.append(f"{name}: {result.fault}")
            self.check_status[name] = f"error: {result.fault}"
        else:
            self.check_status[name] = f"ok: {len(result.findings)} finding(s)"

    @property
    def fault(self) -> str:
        """Why this run's result is ours to fix, not the author's ("" when it is not)."""
        return "; ".join([*([self.applied.fault] if self.applied.fault else []), *self.faults])

    @property
    def all_passed(self) -> bool:
        return all(s is CheckStatus.PASSED for s in self.results.values())

    def plan_json(self) -> dict[str, object]:
        """The build plan as the JSON and the page show it."""
        return {
            "variants": [v.model_dump(mode="json") for v in self.variants],
            "dropped": [v.model_dump(mode="json") for v in self.dropped],
            "suites": [s.model_dump(mode="json") for s in self.suites],
            "coverage": self.coverage.model_dump(mode="json") if self.coverage else None,
        }


class Stopped(Exception):
    """The run was asked to stop (service draining) between two steps."""


def check_series(
    settings: Settings,
    series: Series,
    lst: ListSettings | None,
    *,
    parent: Series | None = None,
    log_dir: Path,
    progress: Progress = _no_progress,
    should_stop: Callable[[], bool] = lambda: False,
    guess: BaseGuess | None = None,
    on_step: Callable[[str], None] = lambda step: None,
) -> CheckOutcome:
    """Apply `series` and run the enabled checks on it; never raises for a check's failure."""
    runner = Runner(log_dir)
    repo = Repo.open(settings, runner)
    timings: dict[str, float] = {}
    from bot.run.gc import disk_fault

    if low_disk := disk_fault(settings):  # ours: held until there is room, never mailed
        return CheckOutcome(
            series=series,
            applied=ApplyResult(ok=False, fault=low_disk, message=low_disk),
            parent=parent,
            timings=timings,
            list_name=lst.name if lst else "",
        )
    with acquire_slot(repo, settings.paths.cache, settings.apply.slots) as slot:
        on_step("apply")
        progress("apply", None)
        t0 = time.monotonic()
        applied = apply_series(settings, repo, slot, series, lst, parent=parent, guess=guess)
        timings["apply"] = round(time.monotonic() - t0, 2)
        outcome = CheckOutcome(
            series=series,
            applied=applied,
            parent=parent,
            timings=timings,
            list_name=lst.name if lst else "",
        )
        if not applied.ok:
            return outcome
        try:
            sandbox = sandbox_for(settings.sandbox, runner)
        except SandboxUnavailable as e:  # ours to fix: held, nothing of the series runs
            outcome.faults.append(f"sandbox unavailable: {e}")
            outcome.notes.append(
                Note(check="sandbox", kind="sandbox-unavailable", message=f"not checked: {e}")
            )
            return outcome
        if not sandbox.enabled:
            outcome.notes.append(
                Note(
                    check="sandbox",
                    kind="unsandboxed",
                    message="built WITHOUT a sandbox: bubblewrap cannot run here and "
                    "[sandbox] allow_unsandboxed = true",
                )
            )
        checked = as_checked(applied)
        diffs = {
            p.index: slot.run_git("show", "--format=", "--no-color", p.commit, name="show")[1]
            for p in checked.patches
            if p.commit
        }
        if lst is not None and lst.llvm and not settings.build.llvm_second:
            build = settings.build.model_copy(update={"llvm_second": True})
            settings = settings.model_copy(update={"build": build})
        ctx = CheckContext(
            series=series,
            applied=checked,
            worktree=slot.path,
            settings=settings,
            runner=runner,
            cache_dir=settings.paths.cache,
            log_dir=log_dir,
            patch_diffs=diffs,
            progress=progress,
            sandbox=sandbox,
            tree_base=applied.base,
            run_jobs=_remote_jobs(settings),
        )
        for name in settings.checks.enabled:
            if should_stop():
                raise Stopped(name)
            on_step(name)
            progress(name, None)
            t0 = time.monotonic()
            check: Check | None = None
            try:
                check = load_check(name)
                outcome.add(name, check.run(ctx))
            except Exception as e:  # a broken check is recorded; the others go on
                log.exception("check %s failed on %s", name, series.msgid)
                outcome.check_status[name] = f"error: {type(e).__name__}: {e}"
                outcome.results[name] = CheckStatus.ERRORED
                outcome.faults.append(f"{name} crashed: {type(e).__name__}")
                outcome.notes.append(
                    Note(
                        check=name,
                        kind="check-errored",
                        message=f"{name} did not complete: {type(e).__name__}",
                    )
                )
            finally:
                timings[name] = round(time.monotonic() - t0, 2)
                if check is None or check.moves_head:
                    # it checked out other commits (its interface says so); the next check
                    # expects the series' head
                    slot.run_git("checkout", "-q", "--detach", "-f", ctx.head, name="restore-head")
    outcome.findings = dedupe(outcome.findings)
    return outcome


def _remote_jobs(settings: Settings) -> Callable[[list[Any]], list[Any]] | None:
    """Build jobs on `lorebot worker` processes when a broker is configured (Celery is
    imported only then: the embedded default needs none of it)."""
    if not settings.dispatch.broker_url:
        return None
    from bot.run.dispatch import remote_jobs

    return remote_jobs(settings)


def as_checked(applied: ApplyResult) -> ApplyResult:
    """What the checks see: for a follow-up ("on top of" a series), the parent's head is the
    base and only the follow-up's own patches are checked (numbered from 1), so that only
    what the follow-up introduces is found; the parent's findings are the parent's."""
    inherited = [p for p in applied.patches if p.parent_patch]
    if not inherited or inherited[-1].commit is None:
        return applied
    own = tuple(
        p.model_copy(update={"index": i})
        for i, p in enumerate((p for p in applied.patches if not p.parent_patch), 1)
    )
    return applied.model_copy(update={"base": inherited[-1].commit, "patches": own})


def outcome_json(outcome: CheckOutcome, replies: list[dict[str, object]]) -> dict[str, object]:
    """The `lorebot check --json` object (keys are an interface: add, never rename)."""
    s, a = outcome.series, outcome.applied
    return {
        "series": {
            "msgid": s.msgid,
            "subject": s.subject,
            "version": s.version,
            "patches": [
                {"index": p.index, "msgid": p.msgid, "subject": p.subject} for p in a.patches
            ]
            or [{"index": p.index, "msgid": p.msgid, "subject": p.subject} for p in s.patches],
        },
        "base": {"tree": a.tree, "branch": a.branch, "sha": a.base},
        "apply": {
            "ok": a.ok,
            "failed_patch": a.failed_patch,
            "message": a.message,
            "tried": [t.model_dump() for t in a.tried],
        },
        "findings": [f.model_dump(mode="json") for f in outcome.findings],
        "notes": [n.model_dump(mode="json") for n in outcome.notes],
        "variants": [v.model_dump(mode="json") for v in outcome.variants],
        "variants_dropped": [v.model_dump(mode="json") for v in outcome.dropped],
        "uncompiled": [u.model_dump(mode="json") for u in outcome.uncompiled],
        "suites": [s.model_dump(mode="json") for s in outcome.suites],
        "checks": outcome.check_status,
        "check_results": {k: str(v) for k, v in outcome.results.items()},
        "held": outcome.fault or None,
        "skipped": outcome.applied.skipped or None,
        "timings": outcome.timings,
        "replies": replies,
        "coverage": outcome.coverage.model_dump(mode="json") if outcome.coverage else None,
    }
