"""Build jobs as plain data: one per (tree, arch, variant), for `lorebot worker` processes.

The coordinator plans the variants as the in-process check does; `split` turns that
plan into JobSpecs (JSON): the tree and its URL, the base, the ordered patches as
mbox text, the variant's config request and the build settings. A worker applies the
patches on the base in a worktree of its own, and `run_job` builds every step of the
variant through `build_step`, the in-process code, returning each step's diagnostics
and compiled objects as plain data. The coordinator merges the results in the
in-process order (step by step, lanes in plan order): baseline diffing, attribution
and mail stay the coordinator's, and the same.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.core.git import Git
from bot.core.runner import Runner
from bot.core.sandbox import Sandbox
from checks.base import CheckContext
from checks.build.diagnostics import Diagnostic
from checks.build.impact import Flip, Impact
from checks.build.kbuild import ObjectChain
from checks.build.lane import Lane
from checks.build.make import Make, kconfig_inputs
from checks.build.measure import object_seen
from checks.build.steps import build_step, set_added
from checks.build.toolchains import Arch
from checks.build.variants import Variant, VariantSpec, read_config
from config.settings import BuildSettings


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VariantRequest(_Data):
    """The variant a job builds: the arch's table row, its toolchain and config request."""

    arch: dict[str, Any]  # a row of config/arches.toml (toolchains.Arch's fields)
    llvm: bool
    target: str  # defconfig target or preset
    enable: tuple[str, ...]
    flip: dict[str, Any] | None = None  # impact.Flip's fields
    helpers: dict[str, str] = {}  # symbols set on top so that the requests stuck
    config_digest: str = ""  # of the verified .config: the worker's must be the same
    added: tuple[str, ...] = ()  # symbols the series adds (set after the patch adding them)

    @property
    def spec(self) -> VariantSpec:
        flip = Flip(**self.flip) if self.flip else None
        return VariantSpec(
            self.arch["name"], self.target, tuple(self.enable), flip, frozenset(self.added)
        )


class StepPlan(_Data):
    """One step of a job: 0 is the base, n the tree after patch n; `forced` objects are
    rebuilt whatever make thinks (their diagnostics printed again)."""

    index: int
    forced: tuple[str, ...]


class SeriesJob(_Data):
    """What every job of one series shares."""

    tree: str
    tree_url: str
    tree_base: str  # the configured tree's commit a worker fetches
    prefix: tuple[str, ...] = ()  # patches between tree_base and the base (a follow-up)
    base: str  # the coordinator's base commit (names the series' base in logs)
    patches: tuple[str, ...]  # the series' patches as mbox text, in order
    chains: tuple[dict[str, Any], ...]  # kbuild.ObjectChain's fields, every planned object
    steps: tuple[StepPlan, ...]  # in order; the first goes through make
    w1: bool
    trusted: bool  # the base holds only the configured tree's code
    build: dict[str, Any]  # BuildSettings
    seconds: float  # what is left of the check's deadline


class JobSpec(_Data):
    """One build job: a series' shared part and one variant; `job_id` keys its result."""

    job_id: str
    series: SeriesJob
    variant: VariantRequest

    @property
    def build_dir(self) -> str:
        """The routing key of the build dir this job builds in (warm placement)."""
        v = self.variant
        return f"{self.series.tree}:{v.arch['name']}{'-llvm' if v.llvm else ''}:{v.spec.key}"


class StepResult(_Data):
    index: int
    diagnostics: tuple[dict[str, Any], ...]  # diagnostics.Diagnostic's fields
    objects: tuple[str, ...]
    failed: str | None = None  # make's output when it failed without a compiler error
    added: dict[str, str] = {}  # symbols the series adds that were set before this step


class JobResult(_Data):
    """What a job returns; `fault` non-empty: ours (infrastructure), never the patch's."""

    job_id: str
    worker: str = ""
    seconds: float = 0.0
    steps: tuple[StepResult, ...] = ()
    fault: str = ""
    # after the last step: object -> changed file -> its lines the object compiled (the
    # coverage's input; measure.object_seen on the worker's O= dir)
    seen: dict[str, dict[str, tuple[int, ...]]] = {}


def config_digest(config: dict[str, str]) -> str:
    """A digest of a .config's symbols (order-free)."""
    return hashlib.sha256(json.dumps(sorted(config.items())).encode()).hexdigest()[:16]


def variant_request(lane: Lane) -> VariantRequest:
    """A planned lane's variant as a request a worker can build (pure)."""
    spec = lane.variant.spec
    return VariantRequest(
        arch=asdict(lane.arch),
        llvm=lane.make.llvm,
        target=spec.target,
        enable=spec.enable,
        flip=asdict(spec.flip) if spec.flip else None,
        helpers=dict(lane.variant.helpers),
        config_digest=config_digest(lane.variant.config),
        added=tuple(sorted(spec.added)),
    )


def split(series: SeriesJob, variants: Sequence[VariantRequest]) -> list[JobSpec]:
    """One job per variant, in plan order; a job's id is a digest of what it builds."""
    out = []
    for v in variants:
        text = json.dumps([series.model_dump(mode="json"), v.model_dump(mode="json")])
        out.append(
            JobSpec(job_id=hashlib.sha256(text.encode()).hexdigest()[:24], series=series, variant=v)
        )
    return out


def matched(specs: Sequence[JobSpec], results: Sequence[JobResult]) -> list[JobResult | None]:
    """Each spec's result, by job id: the first one counts (a job handed out again after
    its worker was lost may answer twice), results of no spec are ignored, None where a
    job did not answer."""
    first: dict[str, JobResult] = {}
    for r in results:
        first.setdefault(r.job_id, r)
    return [first.get(s.job_id) for s in specs]


def diagnostic_data(d: Diagnostic) -> dict[str, Any]:
    return asdict(d)


def diagnostic(data: dict[str, Any]) -> Diagnostic:
    return Diagnostic(
        **{**data, "include_chain": tuple(data["include_chain"]), "notes": tuple(data["notes"])}
    )


def chain(data: dict[str, Any]) -> ObjectChain:
    return ObjectChain(**{**data, "symbols": tuple(data["symbols"])})


class JobFault(Exception):
    """A job could not be built for a reason of ours (fetch, apply, config, toolchain)."""


def run_job(
    spec: JobSpec,
    wt: Path,
    commits: Sequence[str],
    runner: Runner,
    sandbox: Sandbox,
    cache_dir: Path,
    jobs: int | None = None,
) -> JobResult:
    """Build the job's variant at each of its steps in `wt`, where `commits[i]` is the
    tree after patch i (0: the base): each step's diagnostics and objects."""
    start = time.monotonic()
    s, v = spec.series, spec.variant
    cfg = BuildSettings.model_validate(s.build)
    arch = Arch(**v.arch)
    git = Git(runner, worktree=wt)
    base = commits[0]
    if not arch.available(v.llvm):
        raise JobFault(f"{arch.name}: {arch.compiler(v.llvm)} not found on this worker")
    git.out("checkout", "-q", "--detach", base)
    root = cache_dir / "build" / f"{s.tree}-{wt.name}"
    make = Make(
        runner,
        wt,
        arch,
        root / (arch.name + ("-llvm" if v.llvm else "")),
        cache_dir / "ccache",
        v.llvm,
        timeout=cfg.step_seconds,
        sandbox=sandbox,
        trusted=s.trusted,
        kconfig_key=kconfig_inputs(git.out("ls-tree", "-r", base)),
    )
    steps: list[StepResult] = []
    try:
        defconfig = make.defconfig(v.target, base)
        if defconfig is None:
            raise JobFault(f"{arch.name}: make {v.target} failed on this worker")
        vspec = v.spec
        config = _kept_config(make, vspec, v.config_digest) or make.apply(
            vspec, {**v.helpers, **vspec.requests}
        )
        if v.config_digest and config_digest(config) != v.config_digest:
            raise JobFault(f"{arch.name} {vspec.key}: this worker's .config differs")
        lane = Lane(make, Variant(vspec, config, dict(v.helpers), ()), defconfig, "", ())
        lane.pending = dict(vspec.late)
        chains = [chain(c) for c in s.chains]
        for n, step in enumerate(s.steps):
            if time.monotonic() - start > s.seconds:
                break  # the coordinator says the deadline was reached
            sha = commits[step.index]
            if step.index:
                git.out("checkout", "-q", "--detach", sha)
                make.trusted = False  # code from the series from here on
            changed: list[str] = []
            if step.index and n:
                before = commits[s.steps[n - 1].index]
                out = git.out("diff", "--no-renames", "--name-only", before, sha)
                changed = [p for p in out.splitlines() if p]
            added = set_added(lane, changed)
            diags, objects, failed = build_step(
                lane,
                wt,
                chains,
                set(step.forced),
                s.w1,
                jobs or cfg.jobs,
                changed if cfg.replay else [],
            )
            steps.append(
                StepResult(
                    index=step.index,
                    diagnostics=tuple(diagnostic_data(d) for d in diags),
                    objects=tuple(objects),
                    failed=failed[-8000:] if failed is not None else None,
                    added=added,
                )
            )
        seen = _seen(lane, wt, chains, base) if len(steps) == len(s.steps) else {}
    finally:
        make.close()
    return JobResult(
        job_id=spec.job_id, seconds=time.monotonic() - start, steps=tuple(steps), seen=seen
    )


def forced_at(
    index: int, chains: Sequence[ObjectChain], impacts: Mapping[int, Impact]
) -> tuple[str, ...]:
    """The objects rebuilt at a step whatever make thinks: every planned one at the base,
    a patch's own ones after it (their diagnostics printed again)."""
    return tuple(o.object for o in (chains if index == 0 else impacts[index].objects))


def series_job(
    ctx: CheckContext,
    steps: Sequence[tuple[int, str]],
    chains: Sequence[ObjectChain],
    impacts: Mapping[int, Impact],
    w1: bool,
    seconds: float,
) -> SeriesJob:
    """What every job of a series shares, for the steps (index, commit) to build; a
    JobFault when no worker could fetch the base."""
    tree = next((t for t in ctx.settings.trees if t.name == ctx.applied.tree), None)
    if tree is None or not tree.url:
        raise JobFault(f"tree {ctx.applied.tree!r} has no URL a worker can fetch")
    tree_base = ctx.tree_base or ctx.base
    prefix = ctx.git.out("rev-list", "--reverse", f"{tree_base}..{ctx.base}").split()
    return SeriesJob(
        tree=tree.name,
        tree_url=tree.url,
        tree_base=tree_base,
        prefix=tuple(_mbox(ctx.git, c) for c in prefix),
        base=ctx.base,
        patches=tuple(_mbox(ctx.git, sha) for _, sha in ctx.commits),
        chains=tuple(asdict(c) for c in chains),
        steps=tuple(
            StepPlan(index=index, forced=forced_at(index, chains, impacts)) for index, _ in steps
        ),
        w1=w1,
        trusted=ctx.trusted_base,
        build=ctx.settings.build.model_dump(mode="json"),
        seconds=max(0.0, seconds),
    )


def _mbox(git: Git, sha: str) -> str:
    """A commit as the mail `git am` makes it again from."""
    return git.run(
        "format-patch", "-1", "--stdout", "--binary", sha, check=True, name="format-patch"
    ).stdout


def _kept_config(make: Make, vspec: VariantSpec, digest: str) -> dict[str, str] | None:
    """The variant's .config as an earlier job on this worker left it, when it is the one
    asked for (a warm build dir needs no olddefconfig again); else None."""
    odir = make.odir(vspec)
    make.prepare(odir)  # a trusted copy first: a series' build may have changed it
    path = odir / ".config"
    config = read_config(path.read_text(errors="replace")) if path.exists() else None
    return config if digest and config and config_digest(config) == digest else None


def _seen(
    lane: Lane, wt: Path, chains: Sequence[ObjectChain], base: str
) -> dict[str, dict[str, tuple[int, ...]]]:
    """What each compiled C object showed of the files the series changes, at its head."""
    git = Git(lane.make.runner, worktree=wt)
    changed = set(git.out("diff", "--no-renames", "--name-only", base, "HEAD").splitlines())
    sources = {c.object: c.source for c in chains}
    out = {}
    for obj in lane.built:
        if not sources.get(obj, "").endswith(".c"):
            continue
        seen = object_seen(lane, obj, wt)
        if seen is not None:
            out[obj] = {p: tuple(sorted(n)) for p, n in seen.items() if p in changed}
    return out
