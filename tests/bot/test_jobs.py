"""The build check as jobs (checks/build/jobs.py, bot/run/jobhost.py): plain JSON specs,
one per (tree, arch, variant), run in a worktree and cache of their own, merged by the
coordinator into the same findings, notes and plan as the in-process check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.results import CheckResult
from bot.run.jobhost import run_here
from checks.base import CheckContext
from checks.build import BuildCheck
from checks.build.jobs import JobResult, JobSpec
from config.settings import BuildSettings, PathsSettings, Settings, TreeSettings
from tests.support import kernel
from tests.support.fakelinux import fake_tree, gauge_series
from tests.support.scale import MISSING, PATCHES, PRESETS, four_arch_tree

pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}")
TWO = ["x86_64", "arm64"]  # the host's gcc and a cross compiler (test_scale builds four)


def _context(settings: Settings, tmp: Path, arches: list[str] = TWO) -> CheckContext:
    wt = four_arch_tree(tmp / "linux")
    settings = settings.model_copy(
        update={
            "build": BuildSettings(arches=arches, jobs=1, presets=PRESETS),
            "trees": [TreeSettings(name="linux", url=str(wt))],
        }
    )
    return kernel.series_context(wt, PATCHES, settings, tmp, cache_dir=tmp / "cache")


def _seen(r: CheckResult) -> dict[str, object]:
    """What a user sees of a result (everything but timings)."""
    return {
        "status": r.status,
        "fault": r.fault,
        "findings": [f.model_dump(mode="json") for f in r.findings],
        "notes": sorted(json.dumps(n.model_dump(mode="json"), sort_keys=True) for n in r.notes),
        "variants": [v.model_dump(mode="json") for v in r.variants],
        "dropped": [v.model_dump(mode="json") for v in r.dropped],
        "coverage": r.coverage.model_dump(mode="json") if r.coverage else None,
    }


def test_jobs_give_the_result_of_the_in_process_check(settings: Settings, tmp_path: Path) -> None:
    """Two arches as JSON jobs run in a worker cache of their own: the same findings (the
    W=1 warning at patch 2, FOO=n's error at patch 3), notes, plan and coverage; results
    are matched to jobs by id."""
    local = BuildCheck().run(_context(settings, tmp_path / "local"))
    ctx = _context(settings, tmp_path / "coordinator")
    worker = ctx.settings.model_copy(
        update={"paths": PathsSettings(state=tmp_path / "w-state", cache=tmp_path / "w-cache")}
    )
    seen: list[JobSpec] = []
    run = run_here(worker, tmp_path / "w-logs")

    def run_jobs(specs: list[JobSpec]) -> list[JobResult]:
        # the specs travel as JSON, as through a broker
        specs = [JobSpec.model_validate_json(s.model_dump_json()) for s in specs]
        seen.extend(specs)
        results = [JobResult.model_validate_json(r.model_dump_json()) for r in run(specs)]
        # in any order; a job that answers twice counts once (the first), a stray is ignored
        again = [r.model_copy(update={"fault": "a late duplicate"}) for r in results]
        stray = results[0].model_copy(update={"job_id": "not-a-job-of-this-series"})
        return [*reversed(results), *again, stray]

    ctx.run_jobs = run_jobs
    remote = BuildCheck().run(ctx)
    assert {s.variant.arch["name"] for s in seen} == set(TWO)
    assert len(seen) == len(remote.variants)
    assert [(f.patch, f.file, f.kind) for f in remote.findings] == [
        (2, "mm/bar.c", "warning"),
        (3, "mm/core.c", "error"),
    ]
    assert _seen(remote) == _seen(local)
    # the worker built in its own cache, and the coordinator built nothing
    assert list((tmp_path / "w-cache" / "build").iterdir())
    logs = [p.name for p in (tmp_path / "coordinator" / "logs").iterdir()]
    assert not any(n.endswith("-build.log") for n in logs), logs


def test_a_job_that_cannot_fetch_its_base_is_a_fault_not_a_finding(
    settings: Settings, tmp_path: Path
) -> None:
    """The tree's URL is gone: every job's result is a fault of ours; the check is ERRORED
    with it (the pipeline holds the series) and finds nothing about the patches."""
    ctx = _context(settings, tmp_path, ["x86_64"])
    gone = ctx.settings.model_copy(
        update={
            "trees": [TreeSettings(name="linux", url=str(tmp_path / "nowhere"))],
            "paths": PathsSettings(state=tmp_path / "w-state", cache=tmp_path / "w-cache"),
        }
    )
    ctx.settings = ctx.settings.model_copy(update={"trees": gone.trees})
    ctx.run_jobs = run_here(gone, tmp_path / "w-logs")
    result = BuildCheck().run(ctx)
    assert result.status.value == "errored", result.fault
    assert "not found" in result.fault and result.findings == ()


def test_symbols_a_series_adds_are_set_on_the_worker_too(
    settings: Settings, tmp_path: Path
) -> None:
    """A new driver behind a symbol the series adds: its job sets the symbol after the
    patch adding it, as the in-process check does, and the coordinator's result (the
    finding's config, the coverage) is the same."""

    def context(tmp: Path) -> CheckContext:
        wt = fake_tree(tmp / "linux")
        s = settings.model_copy(
            update={
                "build": BuildSettings(arches=["x86_64"], jobs=1),
                "trees": [TreeSettings(name="linux", url=str(wt))],
            }
        )
        return kernel.series_context(wt, gauge_series(), s, tmp, cache_dir=tmp / "cache")

    local = BuildCheck().run(context(tmp_path / "local"))
    ctx = context(tmp_path / "coordinator")
    worker = ctx.settings.model_copy(
        update={"paths": PathsSettings(state=tmp_path / "w-state", cache=tmp_path / "w-cache")}
    )
    ctx.run_jobs = run_here(worker, tmp_path / "w-logs")
    remote = BuildCheck().run(ctx)
    [warning] = [f for f in remote.findings if f.kind == "warning"]
    assert (warning.file, warning.patch) == ("mm/gauge.c", 1)
    assert "GAUGE=y" in warning.config and "CONFIG_GAUGE=y" in warning.config_fragment
    assert remote.coverage is not None and remote.coverage.lines == remote.coverage.covered
    assert _seen(remote) == _seen(local)
