"""The build check: baseline at the base, then each patch's affected objects, per variant.

Flow: impact analysis of every patch → arches and variants → `make olddefconfig`
per variant, verified → the base's affected objects (the baseline) → each patch in
turn → diagnostics absent from the baseline become findings of the first patch
after which they appear.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import TypeVar

from bot.core.results import (
    CheckResult,
    CheckStatus,
    Coverage,
    Finding,
    Note,
    PlannedVariant,
    Uncompiled,
)
from checks.base import CheckContext
from checks.build import jobs, reuse
from checks.build.archdeps import needed_srcarches
from checks.build.diagnostics import Diagnostic
from checks.build.findings import finding
from checks.build.impact import Flip, Impact, analyze, best_flips
from checks.build.kbuild import ObjectChain
from checks.build.lane import Lane
from checks.build.make import Make, SolveFn, kconfig_inputs
from checks.build.measure import measure
from checks.build.planning import Candidate, Cost, by_cost, candidates, choose, host_arch_name
from checks.build.reuse import StepRecord, StepRecords, common_prefix
from checks.build.solve import Solution, solver_for
from checks.build.steps import build_step
from checks.build.toolchains import Arch, load_arches
from checks.build.tree import GitTree, uncommitted_paths
from checks.build.variants import (
    VariantSpec,
    arch_objects,
    fragment_line,
    select_arches,
)

log = logging.getLogger("lorebot.checks.build")
T = TypeVar("T")
R = TypeVar("R")


def _parallel(fn: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    if jobs <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        return list(pool.map(fn, items))


def _note(kind: str, message: str, arch: str = "", detail: str = "") -> Note:
    return Note(check="build", kind=kind, message=message, arch=arch, detail=detail)


class BuildRun:
    """One run of the build check over one series."""

    def __init__(self, ctx: CheckContext, table: dict[str, Arch] | None = None):
        self.ctx = ctx
        self.cfg = ctx.settings.build
        self.table = table or load_arches()
        self.start = time.monotonic()
        self.findings: dict[tuple[str, str, str, str], Finding] = {}
        self.notes: list[Note] = []
        self.lanes: list[Lane] = []
        self.dropped: list[PlannedVariant] = []
        self.makes: dict[str, Make] = {}
        self.uncompiled: list[Uncompiled] = []
        self.coverage: Coverage | None = None
        self.solutions: list[Solution] = []  # what the Kconfig solver answered, in order
        self.wt = ctx.worktree.resolve()
        self.failed_steps: set[int] = set()  # steps where make failed without a diagnostic
        self.faults: list[str] = []  # ours: a job a worker could not build
        self.seen: dict[int, dict[str, dict[str, tuple[int, ...]]]] = {}  # lane -> job's seen

    def git(self, *args: str) -> str:
        return self.ctx.git.out(*args, timeout=300)

    def llvm(self, arch: Arch) -> bool:
        """LLVM=1 when configured and known to work for the arch (else its gcc)."""
        return self.cfg.llvm and arch.llvm

    def past_deadline(self) -> bool:
        """The plan's budget is an estimate; this is the wall-clock stop behind it."""
        return time.monotonic() - self.start > self.cfg.deadline_seconds

    def run(self) -> CheckResult:
        commits = self.ctx.commits
        if not commits:
            return CheckResult.of([])
        head_ref = self.git("rev-parse", "--abbrev-ref", "HEAD")
        head_sha = self.git("rev-parse", "HEAD")
        try:
            self._run(commits)
        finally:
            for make in self.makes.values():
                make.close()
            target = head_ref if head_ref != "HEAD" else head_sha
            self.git("checkout", "-q", *([] if head_ref != "HEAD" else ["--detach"]), target)
        built = tuple(
            PlannedVariant(
                arch=lane.arch.name,
                config=lane.config_label,
                flip=lane.flip,
                objects=tuple(lane.built),
                reason=lane.why,
            )
            for lane in self.lanes
        )
        missing = [n.message for n in self.notes if n.kind == "toolchain-missing"] + self.faults
        result = CheckResult.of(
            self.findings.values(),
            self.notes,
            variants=built,
            uncompiled=tuple(self.uncompiled),
            dropped=tuple(self.dropped),
            coverage=self.coverage,
            seconds=round(time.monotonic() - self.start, 2),
            fault="; ".join(missing),
        )
        if missing:  # an arch it should have built was not built: not a result to mail
            result = result.model_copy(update={"status": CheckStatus.ERRORED})
        return result

    def _impacts(self, commits: list[tuple[int, str]]) -> dict[int, Impact]:
        out = {}
        head = self.git("rev-parse", "HEAD")
        local = uncommitted_paths(self.ctx.git)  # one status for every patch's tree
        for index, sha in commits:
            diff = self.ctx.patch_diffs.get(index) or self.git("show", "--format=", sha)
            tree = GitTree(
                self.ctx.runner, self.wt, sha, grep_worktree=sha == head, uncommitted=local
            )
            impact = analyze(diff, tree, self.cfg.max_header_objects)
            # an object whose chain needs an arch-only symbol needs one arch that has it
            own = [o for o in impact.objects if o.object in impact.w1_objects]
            extra = self._arch_for(tree, own) - set(impact.srcarches)
            if extra:
                impact = replace(impact, srcarches=tuple(sorted({*impact.srcarches, *extra})))
            out[index] = impact
            for note in out[index].notes:
                log.info("patch %d: %s", index, note)
        return out

    def _arch_for(self, tree: GitTree, objects: list[ObjectChain]) -> set[str]:
        """For each object whose Kconfig chain only some arches have: nothing when a
        configured arch is one of them, else the first of them (in the arch table's
        order) whose compiler is here; the arch dirs (srcarch) to add."""
        configured = {self.table[n].srcarch for n in self.cfg.arches if n in self.table}
        out: set[str] = set()
        for o in objects:
            need = needed_srcarches(tree, [o])
            if not need or need & (configured | out):
                continue
            have = [a for a in self.table.values() if a.srcarch in need]
            usable = [a for a in have if a.available(self.llvm(a))]
            if usable:
                out.add(usable[0].srcarch)
            else:
                log.info("%s needs arch %s: no compiler here", o.object, sorted(need))
        return out

    def _run(self, commits: list[tuple[int, str]]) -> None:
        self.ctx.progress("build: impact analysis", 0.0)
        impacts = self._impacts(commits)
        all_objects = list({o.object: o for i in impacts.values() for o in i.objects}.values())
        if not all_objects:
            diff = self.git("diff", self.ctx.base, commits[-1][1])
            self.coverage = measure([], impacts, diff, self.wt, [], True)
            return
        arches = []
        for a in select_arches(list(impacts.values()), self.table, self.cfg.arches):
            if a.available(self.llvm(a)):
                arches.append(a)
            else:
                self.notes.append(
                    _note(
                        "toolchain-missing",
                        f"{a.name}: {a.compiler(self.llvm(a))} not found; "
                        f"not built for {a.name} (apt-get install {a.package})",
                        a.name,
                    )
                )
        base = self.ctx.base
        self.git("checkout", "-q", "--detach", base)
        lanes = self.lanes = self._lanes(arches, impacts, base)
        # W=1 when the series changes a source file. One make call per variant and step
        # with W=1 for all its objects measured faster than splitting W=1 objects into
        # a call of their own (3.2 s vs 7.5 s), and the flags stay the same at every step.
        w1 = self.cfg.w1 and any(i.w1_objects for i in impacts.values())
        steps = [(0, base), *commits]
        self._plan_progress(lanes, all_objects, impacts)
        keys = [self._lane_key(lane) for lane in lanes]
        record = reuse.record_key(base, keys, [o.object for o in all_objects], w1)
        # (jobs on workers do not reuse: the earlier steps' build dirs are theirs)
        reuse_on = self.cfg.reuse and lanes and self.ctx.run_jobs is None
        ids = self._patch_ids(base, commits) if reuse_on else []
        start = self._reused(record, ids, keys, all_objects)
        done = start - 1  # the last step whose results are complete
        finished = True
        remote = self.ctx.run_jobs is not None and bool(lanes)
        if remote:  # on `lorebot worker` processes; the loop below is the in-process way
            series = self._series_job(steps, start, all_objects, impacts, w1)
            done, finished = self._dispatched(series, steps, start, w1)
        for n, (index, sha) in enumerate(steps):
            if n < start or remote:
                continue
            if self.past_deadline():
                finished = False
                self.notes.append(
                    _note(
                        "deadline-reached",
                        f"build.deadline_seconds "
                        f"({self.cfg.deadline_seconds} s) reached; patches "
                        f"{index} and later not built",
                    )
                )
                break
            self.ctx.progress(f"build: {self._step_name(index)}", self._fraction())
            if index:
                self.git("checkout", "-q", "--detach", sha)
                for lane in lanes:  # code from the series from here on
                    lane.make.trusted = False
            # every planned object at every step: make recompiles the ones whose sources
            # or headers the patch changed (kbuild tracks dependencies), so a patch that
            # changes a header breaks its users at that patch; the patch's own objects
            # are forced, so that their diagnostics are printed again
            forced = {o.object for o in (all_objects if index == 0 else impacts[index].objects)}
            # the first step after reused ones goes through make: the O= dirs hold what an
            # earlier run left, not the tree of the step before
            replayable = index and self.cfg.replay and n != start
            changed = self._changed(steps[n - 1][1], sha) if replayable else []
            self._step(index, lanes, all_objects, forced, w1, changed)
            if index not in self.failed_steps and done == n - 1:
                done = n
        if ids and done > 0:
            self._record(record, ids[:done], keys, lanes)
        self.ctx.progress("build: coverage", None)
        self.git("checkout", "-q", "--detach", commits[-1][1])  # the head, reused steps or not
        self.coverage = measure(
            lanes,
            impacts,
            self.git("diff", base, commits[-1][1]),
            self.wt,
            self.dropped,
            finished,
            self._seen_remote if remote else None,
        )
        self.ctx.progress("build: done", 1.0)

    def _dispatched(
        self, series: jobs.SeriesJob | None, steps: list[tuple[int, str]], start: int, w1: bool
    ) -> tuple[int, bool]:
        """Build each lane as a job on the workers, then merge their steps as the in-process
        loop would: (the last complete step, whether every step was built)."""
        assert self.ctx.run_jobs is not None
        if series is None:
            return start - 1, False
        specs = jobs.split(series, [jobs.variant_request(lane) for lane in self.lanes])
        self.ctx.progress(f"build: {len(specs)} jobs on the workers", self._fraction())
        try:
            results = jobs.matched(specs, self.ctx.run_jobs(specs))
        except Exception as e:  # the broker or the workers: ours, never the patch's
            log.warning("build jobs not run: %s: %s", type(e).__name__, e)
            self.faults.append(f"build jobs not run: {e}")
            return start - 1, False
        for lane, r in zip(self.lanes, results, strict=True):
            if r is None or r.fault:
                why = r.fault if r is not None else "no result"
                self.faults.append(f"{lane.arch.name} {lane.config_label}: {why}")
        if self.faults:  # ours: the series is held, nothing of it is mailed
            return start - 1, False
        self.seen = {i: dict(r.seen) for i, r in enumerate(results) if r is not None}
        done = start - 1
        for n, (index, sha) in enumerate(steps):
            if n < start:
                continue
            k = n - start
            if any(r is None or len(r.steps) <= k for r in results):
                self.notes.append(
                    _note(
                        "deadline-reached",
                        f"build.deadline_seconds ({self.cfg.deadline_seconds} s) reached; "
                        f"patches {index} and later not built",
                    )
                )
                return done, False
            if index:  # the findings quote the tree as it is after the patch
                self.git("checkout", "-q", "--detach", sha)
            for lane, r in zip(self.lanes, results, strict=True):
                assert r is not None
                got = r.steps[k]
                lane.built.update(dict.fromkeys(got.objects))
                if got.failed is not None:
                    self._failed(lane, index, got.failed)
                diags = [jobs.diagnostic(d) for d in got.diagnostics]
                self._merge(index, lane, diags, list(got.objects), w1)
            if index not in self.failed_steps and done == n - 1:
                done = n
        return done, True

    def _seen_remote(self, lane: Lane, obj: str) -> dict[str, set[int]] | None:
        """What an object compiled, as the lane's job saw it on its worker."""
        seen = self.seen.get(self.lanes.index(lane), {}).get(obj)
        return None if seen is None else {p: set(n) for p, n in seen.items()}

    def _series_job(
        self,
        steps: list[tuple[int, str]],
        start: int,
        chains: list[ObjectChain],
        impacts: dict[int, Impact],
        w1: bool,
    ) -> jobs.SeriesJob | None:
        """What every job of this series shares, or None (a fault noted) when a worker
        could not fetch the base."""
        ctx = self.ctx
        tree = next((t for t in ctx.settings.trees if t.name == ctx.applied.tree), None)
        if tree is None or not tree.url:
            self.faults.append(f"tree {ctx.applied.tree!r} has no URL a worker can fetch")
            return None
        tree_base = ctx.tree_base or ctx.base
        prefix = self.git("rev-list", "--reverse", f"{tree_base}..{ctx.base}").split()
        return jobs.SeriesJob(
            tree=tree.name,
            tree_url=tree.url,
            tree_base=tree_base,
            prefix=tuple(self._mbox(c) for c in prefix),
            base=ctx.base,
            patches=tuple(self._mbox(sha) for _, sha in steps[1:]),
            chains=tuple(asdict(c) for c in chains),
            steps=tuple(
                jobs.StepPlan(
                    index=index,
                    forced=tuple(
                        o.object for o in (chains if index == 0 else impacts[index].objects)
                    ),
                )
                for index, _ in steps[start:]
            ),
            w1=w1,
            trusted=ctx.trusted_base,
            build=self.cfg.model_dump(mode="json"),
            seconds=max(0.0, self.cfg.deadline_seconds - (time.monotonic() - self.start)),
        )

    def _mbox(self, sha: str) -> str:
        """A commit as the mail `git am` makes it again from."""
        return self.ctx.git.run(
            "format-patch", "-1", "--stdout", "--binary", sha, check=True, name="format-patch"
        ).stdout

    def _lane_key(self, lane: Lane) -> str:
        return f"{lane.arch.name}:{lane.variant.spec.key}:{'llvm' if lane.make.llvm else 'gcc'}"

    def _patch_ids(self, base: str, commits: list[tuple[int, str]]) -> list[str]:
        """`git patch-id --stable` of each commit, in order ("" where git gave none)."""
        log = self.ctx.git.run(
            "log",
            "--reverse",
            "-p",
            "--no-color",
            "--format=commit %H",
            f"{base}..{commits[-1][1]}",
            timeout=300,
            name="git-log-patches",
        )
        if not log.ok:
            return []
        r = self.ctx.git.run("patch-id", "--stable", input=log.stdout, name="git-patch-id")
        by_commit = {c: p for p, _, c in (ln.partition(" ") for ln in r.stdout.splitlines())}
        return [by_commit.get(sha, "") for _, sha in commits]

    def _reused(
        self, record: str, ids: list[str], keys: list[str], chains: list[ObjectChain]
    ) -> int:
        """Take an earlier run's results for the leading patches it shares with this one
        (same base, variants and objects): the index in the steps to start from."""
        earlier = StepRecords(self.ctx.cache_dir / "build" / "steps").load(record) if ids else None
        if earlier is None or not all(k in earlier.baselines for k in keys):
            return 0
        k = common_prefix(ids, earlier.patch_ids)
        if k == 0:
            return 0
        for lane, key in zip(self.lanes, keys, strict=True):
            lane.baseline = set(earlier.baselines[key])
            lane.built.update(dict.fromkeys(lane.objects(chains, self.wt)))
        self.findings.update(earlier.findings_up_to(k))
        self.notes.append(
            _note(
                "steps-reused",
                f"patches 1-{k} are the patches of an earlier run on the same base "
                "(git patch-id): their build results are reused, the build starts at "
                f"{'the end' if k == len(ids) else f'patch {k + 1}'}",
            )
        )
        return k + 1

    def _record(self, record: str, ids: list[str], keys: list[str], lanes: list[Lane]) -> None:
        """Keep what this run's complete steps found, for a re-roll that shares them."""
        k = len(ids)
        findings = [(key, f) for key, f in self.findings.items() if f.patch and f.patch <= k]
        baselines = {key: sorted(lane.baseline) for key, lane in zip(keys, lanes, strict=True)}
        StepRecords(self.ctx.cache_dir / "build" / "steps").save(
            record, StepRecord(ids, baselines, findings)
        )

    def _plan_progress(
        self, lanes: list[Lane], chains: list[ObjectChain], impacts: dict[int, Impact]
    ) -> None:
        """The work planned for each (step, lane), in objects to compile plus one for the
        make or replay call itself: what the fraction done (and so an ETA) counts."""
        self._work: dict[tuple[int, int], int] = {}
        for n, lane in enumerate(lanes):
            mine = set(lane.objects(chains, self.wt))
            self._work[(0, n)] = len(mine) + 1
            for index, impact in impacts.items():
                self._work[(index, n)] = len(mine & {o.object for o in impact.objects}) + 1
        self._done = 0
        self._progress_lock = threading.Lock()

    def _fraction(self) -> float:
        return self._done / max(1, sum(self._work.values()))

    def _step_name(self, index: int) -> str:
        return "baseline" if index == 0 else f"patch {index}/{len(self.ctx.commits)}"

    def _lane_done(self, index: int, lane: Lane) -> None:
        """One variant finished a step: the progress says which, and how far the plan is."""
        with self._progress_lock:
            self._done += self._work.get((index, self.lanes.index(lane)), 1)
            fraction = self._fraction()
        self.ctx.progress(
            f"build: {self._step_name(index)}, {lane.arch.name} {lane.config_label}", fraction
        )

    def _changed(self, before: str, after: str) -> list[str]:
        """Files a patch changed (added, modified, deleted, both sides of a rename)."""
        out = self.git("diff", "--no-renames", "--name-only", before, after)
        return [p for p in out.splitlines() if p]

    def _lanes(self, arches: list[Arch], impacts: dict[int, Impact], base: str) -> list[Lane]:
        """Verified variants in the planner's order, within the budget of work."""
        ctx = self.ctx
        root = ctx.cache_dir / "build" / f"{ctx.applied.tree or 'tree'}-{self.wt.name}"
        arches = by_cost(arches, host_arch_name())
        # configs made at another commit with the same Kconfig inputs are this base's too
        # (a follow-up's base is its parent's head: the tree's Kconfig, new commit)
        kconfig_key = kconfig_inputs(self.git("ls-tree", "-r", base))
        makes = self.makes = {
            a.name: Make(
                ctx.runner,
                self.wt,
                a,
                root / (a.name + ("-llvm" if self.llvm(a) else "")),
                ctx.cache_dir / "ccache",
                self.llvm(a),
                timeout=self.cfg.step_seconds,
                sandbox=ctx.sandbox,
                trusted=ctx.trusted_base,
                kconfig_key=kconfig_key,
            )
            for a in arches
        }
        targets = {a.name: self.cfg.presets.get(a.name, a.defconfig) for a in arches}
        ctx.progress(f"build: configuring {len(arches)} arches", None)
        defconfigs = dict(
            zip(
                makes,
                _parallel(
                    lambda m: m.defconfig(targets[m.arch.name], base),
                    list(makes.values()),
                    self.cfg.jobs,
                ),
                strict=True,
            )
        )
        for name, cfg in defconfigs.items():
            if cfg is None:
                self.notes.append(
                    _note(
                        "build-failed",
                        f"{name}: make {targets[name]} failed; not built for {name}",
                        name,
                        "\n".join(makes[name].log),
                    )
                )
        arches = [a for a in arches if defconfigs[a.name] is not None]
        if not arches:
            return []
        kconfig = GitTree(ctx.runner, self.wt, base, grep_worktree=True)  # checked out at base
        solver = (
            solver_for(base, ctx.cache_dir / "kconfig-models", self.solutions)
            if self.cfg.kconfig_solver
            else None
        )
        objects = list({o.object: o for i in impacts.values() for o in i.objects}.values())
        # the base enables the chains of the objects the series changes; a header's users
        # each get a flip of their own, so that the base keeps its values around them
        own = {o for i in impacts.values() for o in i.w1_objects}
        mine = [o for o in objects if o.object in own]
        specs = {
            a.name: VariantSpec(
                a.name,
                targets[a.name],
                tuple(dict.fromkeys(s for o in arch_objects(mine, a) for s in o.symbols)),
            )
            for a in arches
        }
        user_flips = [
            Flip(o.symbols[0], "y", 2, f"{o.object} uses what the series changes in a header")
            for o in objects
            if o.object not in own and o.symbols
        ]
        configured = _parallel(
            lambda s: makes[s.arch].variant(s, base, kconfig, solver),
            list(specs.values()),
            self.cfg.jobs,
        )
        bases = {v.spec.arch: v for v in configured}
        flips = best_flips([*(f for i in impacts.values() for f in i.flips), *user_flips])
        steps = [[o.object for o in impacts[i].objects] for i in sorted(impacts)]
        srcarches = sorted({s for i in impacts.values() for s in i.srcarches})
        cost = Cost(self.cfg.object_seconds, self.cfg.config_seconds, self.cfg.jobs)
        plan = choose(
            candidates(
                arches,
                {n: v.config for n, v in bases.items()},
                specs,
                flips,
                objects,
                steps,
                srcarches,
                cost,
            ),
            self.cfg.budget_seconds,
            self.cfg.max_variants,
        )
        log.info(
            "build plan: %d variants (~%.0f s of work), %d dropped",
            len(plan.chosen),
            plan.seconds,
            len(plan.dropped),
        )
        for d in plan.dropped:
            self._drop(d.candidate, d.reason)
        wanted = [c.spec for c in plan.chosen if c.spec.flip]
        if wanted:
            ctx.progress(f"build: configuring {len(wanted)} variants", None)
        flipped = {
            v.spec: v
            for v in _parallel(
                lambda s: makes[s.arch].variant(s, base, kconfig, solver), wanted, self.cfg.jobs
            )
        }
        relevant = tuple(dict.fromkeys(f.symbol for f in flips))
        compilers: dict[str, str] = {}
        seen: dict[tuple[str, frozenset[tuple[str, str]]], Lane] = {}
        lanes: list[Lane] = []
        for c in plan.chosen:
            arch = c.spec.arch
            v = flipped[c.spec] if c.spec.flip else bases[arch]
            if v.flip_refused:
                self.notes.append(
                    _note(
                        "config-refused",
                        f"{arch}: {v.spec.target} with CONFIG_{c.flip_label} "
                        f"refused by Kconfig: {'; '.join(v.refused)}; variant not built"
                        + (f" (conflicting symbols: {', '.join(v.blocked)})" if v.blocked else ""),
                        arch,
                        "helpers tried: " + (fragment_line(v.helpers) or "none"),
                    )
                )
                self._drop(c, f"refused by Kconfig: {'; '.join(v.refused)}")
                continue
            key = (arch, frozenset(v.config.items()))
            if key in seen:
                self._drop(c, f"same .config as {seen[key].config_label}")
                continue
            if arch not in compilers:
                compilers[arch] = makes[arch].compiler_version()
            lane = Lane(makes[arch], v, defconfigs[arch] or {}, compilers[arch], relevant, c.reason)
            seen[key] = lane
            lanes.append(lane)
        lanes += self._llvm_lane(arches[0], targets, specs, base, kconfig, solver, relevant)
        self.uncompiled = self._unbuilt(lanes, impacts)
        blocked = sorted({b for v in bases.values() for b in v.blocked})
        for u in self.uncompiled:
            self.notes.append(
                _note(
                    "not-built",
                    f"{u.what} ({u.needs}): its Kconfig symbols "
                    "are off in every variant built; not compiled"
                    + (f" (conflicting symbols: {', '.join(blocked)})" if blocked else ""),
                )
            )
        return lanes

    def _llvm_lane(
        self,
        host: Arch,
        targets: dict[str, str],
        specs: dict[str, VariantSpec],
        base: str,
        kconfig: GitTree,
        solver: SolveFn | None,
        relevant: tuple[str, ...],
    ) -> list[Lane]:
        """The host's base variant again with LLVM=1 (clang), when configured: 0-day finds
        about half of its build regressions with clang."""
        if not self.cfg.llvm_second or self.llvm(host) or not host.llvm:
            return []
        if not host.available(True):
            self.notes.append(
                _note(
                    "toolchain-missing",
                    f"{host.name}: clang not found; no LLVM=1 build (apt-get install clang lld)",
                    host.name,
                )
            )
            return []
        ctx = self.ctx
        root = ctx.cache_dir / "build" / f"{ctx.applied.tree or 'tree'}-{self.wt.name}"
        make = Make(
            ctx.runner,
            self.wt,
            host,
            root / f"{host.name}-llvm",
            ctx.cache_dir / "ccache",
            True,
            timeout=self.cfg.step_seconds,
            sandbox=ctx.sandbox,
            trusted=ctx.trusted_base,
        )
        self.makes[f"{host.name}-llvm"] = make
        defconfig = make.defconfig(targets[host.name], base)
        if defconfig is None:
            self.notes.append(
                _note(
                    "build-failed",
                    f"{host.name}: make LLVM=1 {targets[host.name]} failed; no clang build",
                    host.name,
                    "\n".join(make.log),
                )
            )
            return []
        v = make.variant(specs[host.name], base, kconfig, solver)
        why = "LLVM=1 (clang): the second toolchain"
        return [
            Lane(make, v, defconfig, make.compiler_version(), relevant, why, toolchain="LLVM=1")
        ]

    def _drop(self, c: Candidate, reason: str) -> None:
        """A planned variant that is not built: in the plan's dropped list and a Note."""
        config = " ".join([c.spec.target, *([c.flip_label] if c.flip_label else [])])
        what = f"{c.spec.arch} {c.spec.target}" + (
            f" with {c.flip_label}" if c.flip_label else " (base)"
        )
        self.dropped.append(
            PlannedVariant(
                arch=c.spec.arch, config=config, flip=c.flip_label, objects=c.objects, reason=reason
            )
        )
        self.notes.append(
            _note(
                "variant-dropped",
                f"{what} not built: {reason}",
                c.spec.arch,
                f"planned for: {c.reason}",
            )
        )

    def _unbuilt(self, lanes: list[Lane], impacts: dict[int, Impact]) -> list[Uncompiled]:
        objs = {o.object: o for i in impacts.values() for o in i.objects}
        return [
            Uncompiled(what=name, needs=" ".join(f"CONFIG_{s}" for s in o.symbols))
            for name, o in objs.items()
            if not any(o.object in lane.objects([o], self.wt) for lane in lanes)
        ]

    def _step(
        self,
        index: int,
        lanes: list[Lane],
        chains: list[ObjectChain],
        forced: set[str],
        w1: bool,
        changed: Sequence[str] = (),
    ) -> None:
        """Build the objects of one step in every lane; record baseline or new diagnostics.

        `changed` (the files the step's patch changed) lets a lane replay saved compile
        commands instead of running make; empty means make.
        """
        # `jobs` lanes at once, each allowed `jobs` compiles: while one lane waits on make's
        # own single-threaded work or has finished, the other's compiles fill the cores
        parallel = max(1, min(self.cfg.jobs, len(lanes)))
        jobs = self.cfg.jobs

        def build(lane: Lane) -> tuple[Lane, list[Diagnostic], list[str]]:
            diags, objects, failed = build_step(lane, self.wt, chains, forced, w1, jobs, changed)
            if failed is not None:
                self._failed(lane, index, failed)
            self._lane_done(index, lane)
            return lane, diags, objects

        for lane, diags, objects in _parallel(build, lanes, parallel):
            self._merge(index, lane, diags, objects, w1)

    def _merge(
        self, index: int, lane: Lane, diags: list[Diagnostic], objects: list[str], w1: bool
    ) -> None:
        """One lane's diagnostics of one step: the baseline at the base, else new findings
        (the first lane and patch that show one own it; later lanes are "also")."""
        if index == 0:
            lane.baseline |= {d.key for d in diags}
            return
        for d in diags:
            if d.key in lane.baseline:
                continue
            if d.key in self.findings:
                self._also(d, lane)
                continue
            self.findings[d.key] = finding(self.wt, index, lane, d, objects, w1)

    def _failed(self, lane: Lane, index: int, output: str) -> None:
        """make failed without a compiler error (prepare, a tool, a timeout): say so once."""
        self.failed_steps.add(index)
        where = f"{lane.arch.name} {lane.config_label}"
        if any(
            n.kind == "build-failed" and (n.arch, n.config) == (lane.arch.name, lane.config_label)
            for n in self.notes
        ):
            return
        tail = "\n".join(output.strip().splitlines()[-15:])
        self.notes.append(
            Note(
                check="build",
                kind="build-failed",
                arch=lane.arch.name,
                config=lane.config_label,
                message=f"make failed for {where} "
                f"({'baseline' if index == 0 else f'after patch {index}'}) with no compiler "
                "error; its results are incomplete",
                detail=tail,
            )
        )

    def _also(self, d: Diagnostic, lane: Lane) -> None:
        f = self.findings[d.key]
        where = f"{lane.arch.name} {lane.config_label}"
        if where not in f.detail and where != f"{f.arch} {f.config}":
            extra = f"also with {where}"
            self.findings[d.key] = f.model_copy(
                update={"detail": (f.detail + "\n" + extra).strip()}
            )
