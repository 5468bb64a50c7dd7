"""The build check: baseline at the base, then each patch's affected objects, per variant.

Flow: impact analysis of every patch → arches and variants → `make olddefconfig`
per variant, verified → the base's affected objects (the baseline) → each patch in
turn → diagnostics absent from the baseline become findings of the first patch
after which they appear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

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
from checks.build.impact import Impact, analyze
from checks.build.kbuild import ObjectChain
from checks.build.lane import Lane
from checks.build.lanes import LanePlanner, note
from checks.build.make import Make
from checks.build.measure import measure
from checks.build.parallel import parallel
from checks.build.progress import StepProgress
from checks.build.reuse import StepRecord, StepRecords, common_prefix
from checks.build.solve import Solution
from checks.build.steps import build_step, set_added, take_added
from checks.build.toolchains import Arch, load_arches
from checks.build.tree import GitTree, uncommitted_paths
from checks.build.variants import (
    fragment_line,
    select_arches,
)

log = logging.getLogger("lorebot.checks.build")


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
            for said in out[index].notes:
                log.info("patch %d: %s", index, said)
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
                    note(
                        "toolchain-missing",
                        f"{a.name}: {a.compiler(self.llvm(a))} not found; "
                        f"not built for {a.name} (apt-get install {a.package})",
                        a.name,
                    )
                )
        base = self.ctx.base
        series_diff = self.git("diff", base, commits[-1][1])
        self.git("checkout", "-q", "--detach", base)
        planner = LanePlanner(
            self.ctx, self.wt, self.llvm, self.notes, self.dropped, self.solutions, self.makes
        )
        lanes = self.lanes = planner.plan(arches, impacts, base, series_diff, commits[-1][1])
        # W=1 when the series changes a source file. One make call per variant and step
        # with W=1 for all its objects measured faster than splitting W=1 objects into
        # a call of their own (3.2 s vs 7.5 s), and the flags stay the same at every step.
        w1 = self.cfg.w1 and any(i.w1_objects for i in impacts.values())
        steps = [(0, base), *commits]
        self.progress = StepProgress(
            self.ctx.progress, len(commits), lanes, all_objects, impacts, self.wt
        )
        keys = [self._lane_key(lane) for lane in lanes]
        record = reuse.record_key(base, keys, [o.object for o in all_objects], w1)
        # (jobs on workers do not reuse: the earlier steps' build dirs are theirs)
        reuse_on = self.cfg.reuse and lanes and self.ctx.run_jobs is None
        ids = reuse.patch_ids(self.ctx.git, base, commits) if reuse_on else []
        start = self._reused(record, ids, keys, all_objects)
        done = start - 1  # the last step whose results are complete
        finished = True
        remote = self.ctx.run_jobs is not None and bool(lanes)
        if remote:  # on `lorebot worker` processes; the loop below is the in-process way
            try:
                left = self.cfg.deadline_seconds - (time.monotonic() - self.start)
                series = jobs.series_job(self.ctx, steps[start:], all_objects, impacts, w1, left)
            except jobs.JobFault as e:
                self.faults.append(str(e))
                series = None
            done, finished = self._dispatched(series, steps, start, w1)
        for n, (index, sha) in enumerate(steps):
            if n < start or remote:
                continue
            if self.past_deadline():
                finished = False
                self.notes.append(
                    note(
                        "deadline-reached",
                        f"build.deadline_seconds "
                        f"({self.cfg.deadline_seconds} s) reached; patches "
                        f"{index} and later not built",
                    )
                )
                break
            self.progress.step(index)
            if index:
                self.git("checkout", "-q", "--detach", sha)
                for lane in lanes:  # code from the series from here on
                    lane.make.trusted = False
                # after reused steps: what they changed too (a symbol their patches add)
                self._late(lanes, index, steps[0 if n == start else n - 1][1], sha)
            # every planned object at every step: make recompiles the ones whose sources
            # or headers the patch changed (kbuild tracks dependencies), so a patch that
            # changes a header breaks its users at that patch; the patch's own objects
            # are forced, so that their diagnostics are printed again
            forced = set(jobs.forced_at(index, all_objects, impacts))
            # the first step after reused ones goes through make: the O= dirs hold what an
            # earlier run left, not the tree of the step before
            replayable = index and self.cfg.replay and n != start
            changed = self._changed(steps[n - 1][1], sha) if replayable else []
            self._step(index, lanes, all_objects, forced, w1, changed)
            if index not in self.failed_steps and done == n - 1:
                done = n
        if ids and done > 0:
            self._record(record, ids[:done], keys, lanes)
        self._not_built(lanes, impacts, finished)
        self.ctx.progress("build: coverage", None)
        self.git("checkout", "-q", "--detach", commits[-1][1])  # the head, reused steps or not
        self.coverage = measure(
            lanes,
            impacts,
            series_diff,
            self.wt,
            self.dropped,
            finished,
            self._seen_remote if remote else None,
            {f.file for f in self.findings.values() if f.severity == "error"},
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
        self.ctx.progress(f"build: {len(specs)} jobs on the workers", self.progress.fraction())
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
                    note(
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
                take_added(lane, got.added)
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

    def _lane_key(self, lane: Lane) -> str:
        return f"{lane.arch.name}:{lane.variant.spec.key}:{'llvm' if lane.make.llvm else 'gcc'}"

    def _reused(
        self, record: str, ids: list[str], keys: list[str], chains: list[ObjectChain]
    ) -> int:
        """Take an earlier run's results for the leading patches it shares with this one
        (same base, variants and objects): the index in the steps to start from."""
        earlier = StepRecords(self.ctx.cache_dir / "build" / "steps").load(record) if ids else None
        if earlier is None or not all(k in earlier.baselines for k in keys):
            return 0
        # the last patch is always built: coverage is measured in the build dirs as the
        # head left them, and a series sent again unchanged (RESEND) would have nothing
        # built in them at all (they hold what the last run there left)
        k = min(common_prefix(ids, earlier.patch_ids), len(ids) - 1)
        if k <= 0:
            return 0
        for lane, key in zip(self.lanes, keys, strict=True):
            lane.baseline = set(earlier.baselines[key])
            lane.built.update(dict.fromkeys(lane.objects(chains, self.wt)))
        self.findings.update(earlier.findings_up_to(k))
        shared = f"patches 1-{k} are the patches" if k > 1 else "patch 1 is the patch"
        self.notes.append(
            note(
                "steps-reused",
                f"{shared} of an earlier run on the same base (git patch-id): their build "
                f"results are reused, the build starts at patch {k + 1}",
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

    def _changed(self, before: str, after: str) -> list[str]:
        """Files a patch changed (added, modified, deleted, both sides of a rename)."""
        out = self.git("diff", "--no-renames", "--name-only", before, after)
        return [p for p in out.splitlines() if p]

    def _late(self, lanes: list[Lane], index: int, before: str, sha: str) -> None:
        """After a patch that changes Kconfig: set the symbols the series adds that lanes
        ask for (`steps.set_added`)."""
        if any(lane.pending for lane in lanes):
            changed = self._changed(before, sha)
            for lane in lanes:
                if took := set_added(lane, changed):
                    log.info("patch %d adds %s: set in %s", index, took, lane.config_label)

    def _not_built(self, lanes: list[Lane], impacts: dict[int, Impact], finished: bool) -> None:
        """Objects of the series that no lane compiled at any step, each with a Note; the
        symbols the series adds that Kconfig never took, with a Note per lane."""
        for lane in lanes:
            if lane.pending:
                self.notes.append(
                    note(
                        "config-refused",
                        f"{lane.arch.name}: {fragment_line(lane.pending)}, added by the "
                        f"series, not taken by Kconfig after it ({lane.config_label})",
                        lane.arch.name,
                    )
                )
        if not finished:  # the deadline note says what was not built
            return
        self.uncompiled = self._unbuilt(lanes, impacts)
        blocked = sorted({b for lane in lanes for b in lane.variant.blocked})
        for u in self.uncompiled:
            self.notes.append(
                note(
                    "not-built",
                    f"{u.what} ({u.needs}): its Kconfig symbols "
                    "are off in every variant built; not compiled"
                    + (f" (conflicting symbols: {', '.join(blocked)})" if blocked else ""),
                )
            )

    def _unbuilt(self, lanes: list[Lane], impacts: dict[int, Impact]) -> list[Uncompiled]:
        """The series' objects that no lane compiled, at any step (a new file is compiled
        only from the patch that adds it, a new symbol's object once it is set)."""
        objs = {o.object: o for i in impacts.values() for o in i.objects}
        return [
            Uncompiled(what=name, needs=" ".join(f"CONFIG_{s}" for s in o.symbols))
            for name, o in objs.items()
            if not any(name in lane.built for lane in lanes)
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
        at_once = max(1, min(self.cfg.jobs, len(lanes)))
        jobs = self.cfg.jobs

        def build(lane: Lane) -> tuple[Lane, list[Diagnostic], list[str]]:
            diags, objects, failed = build_step(lane, self.wt, chains, forced, w1, jobs, changed)
            if failed is not None:
                self._failed(lane, index, failed)
            self.progress.lane_done(index, lane)
            return lane, diags, objects

        for lane, diags, objects in parallel(build, lanes, at_once):
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
