"""The variants a series is built in (lanes): arches configured, candidates planned, verified.

From the impact of every patch: one Make per arch and its target config, the base
spec of each arch (the chains of the series' own objects, what the symbols the
series adds depend on), the flips and the header users, the planner's choice
within the budget (`planning.py`), each chosen variant configured and verified
(`Make.variant`, the Kconfig solver), and the LLVM=1 lane when configured. What is
not built is said: a dropped candidate or a refused flip is a Note.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.results import Note, PlannedVariant
from checks.base import CheckContext
from checks.build.added import dependencies, new_symbols
from checks.build.impact import Impact, best_flips
from checks.build.lane import Lane
from checks.build.make import Make, SolveFn, kconfig_inputs
from checks.build.parallel import parallel
from checks.build.planning import Candidate, Cost, Why, by_cost, candidates, choose, host_arch_name
from checks.build.solve import Solution, solver_for
from checks.build.toolchains import Arch
from checks.build.tree import GitTree
from checks.build.variants import VariantSpec, arch_objects, fragment_line
from config.settings import BuildSettings

log = logging.getLogger("lorebot.checks.build")


def note(kind: str, message: str, arch: str = "", detail: str = "") -> Note:
    return Note(check="build", kind=kind, message=message, arch=arch, detail=detail)


@dataclass
class LanePlanner:
    """Plans and configures the lanes of one run; what it says goes to the run's lists."""

    ctx: CheckContext
    wt: Path
    llvm: Callable[[Arch], bool]  # LLVM=1 for this arch's main build
    notes: list[Note]
    dropped: list[PlannedVariant]
    solutions: list[Solution]  # what the Kconfig solver answered, in order
    makes: dict[str, Make] = field(default_factory=dict)

    @property
    def cfg(self) -> BuildSettings:
        return self.ctx.settings.build

    def git(self, *args: str) -> str:
        return self.ctx.git.out(*args, timeout=300)

    def plan(
        self,
        arches: list[Arch],
        impacts: dict[int, Impact],
        base: str,
        series_diff: str,
        head: str,
    ) -> list[Lane]:
        """Verified variants in the planner's order, within the budget of work."""
        ctx = self.ctx
        root = ctx.cache_dir / "build" / f"{ctx.applied.tree or 'tree'}-{self.wt.name}"
        arches = by_cost(arches, host_arch_name())
        # configs made at another commit with the same Kconfig inputs are this base's too
        # (a follow-up's base is its parent's head: the tree's Kconfig, new commit)
        kconfig_key = kconfig_inputs(self.git("ls-tree", "-r", base))
        self.makes.update(
            {
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
        )
        makes = self.makes
        targets = {a.name: self.cfg.presets.get(a.name, a.defconfig) for a in arches}
        ctx.progress(f"build: configuring {len(arches)} arches", None)
        defconfigs = dict(
            zip(
                makes,
                parallel(
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
                    note(
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
        # the base enables the chains of the objects the series changes; the users of a
        # changed header that it does not build get a variant of their own (together),
        # so that the base keeps its values around the series' objects
        own = {o for i in impacts.values() for o in i.w1_objects}
        mine = [o for o in objects if o.object in own]
        users = [o for o in objects if o.object not in own]
        flips = best_flips([f for i in impacts.values() for f in i.flips])
        # a symbol the series adds is set once a patch has added it; what it depends on
        # is asked of the base
        added = new_symbols(series_diff, kconfig)
        deps = (
            dependencies(
                GitTree(ctx.runner, self.wt, head),
                added,
                [
                    *(s for o in mine for s in o.symbols),
                    *(f.symbol for f in flips if f.value != "n"),
                ],
            )
            if added
            else []
        )
        specs = {
            a.name: VariantSpec(
                a.name,
                targets[a.name],
                tuple(
                    dict.fromkeys([*(s for o in arch_objects(mine, a) for s in o.symbols), *deps])
                ),
                added=added,
            )
            for a in arches
        }
        configured = parallel(
            lambda s: makes[s.arch].variant(s, base, kconfig, solver),
            list(specs.values()),
            self.cfg.jobs,
        )
        bases = {v.spec.arch: v for v in configured}
        steps = [[o.object for o in impacts[i].objects] for i in sorted(impacts)]
        srcarches = sorted({s for i in impacts.values() for s in i.srcarches})
        cost = Cost(self.cfg.object_seconds, self.cfg.config_seconds, self.cfg.jobs)
        plan = choose(
            candidates(
                arches,
                {n: v.expected() for n, v in bases.items()},
                specs,
                flips,
                objects,
                steps,
                srcarches,
                cost,
                users,
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
        wanted = [c.spec for c in plan.chosen if c.spec != specs[c.spec.arch]]
        if wanted:
            ctx.progress(f"build: configuring {len(wanted)} variants", None)
        flipped = {
            v.spec: v
            for v in parallel(
                lambda s: makes[s.arch].variant(s, base, kconfig, solver), wanted, self.cfg.jobs
            )
        }
        relevant = tuple(dict.fromkeys(f.symbol for f in flips))
        compilers: dict[str, str] = {}
        seen: dict[tuple[str, frozenset[tuple[str, str]], frozenset[tuple[str, str]]], Lane] = {}
        lanes: list[Lane] = []
        for c in plan.chosen:
            arch = c.spec.arch
            v = flipped.get(c.spec, bases[arch])
            if v.flip_refused:
                self.notes.append(
                    note(
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
            key = (arch, frozenset(v.config.items()), frozenset(v.spec.late.items()))
            if key in seen:
                self._drop(c, f"same .config as {seen[key].config_label}")
                continue
            if arch not in compilers:
                compilers[arch] = makes[arch].compiler_version()
            lane = Lane(makes[arch], v, defconfigs[arch] or {}, compilers[arch], relevant, c.reason)
            lane.pending = dict(v.spec.late)
            seen[key] = lane
            lanes.append(lane)
        lanes += self._llvm_lane(arches[0], targets, specs, base, kconfig, solver, relevant)
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
                note(
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
                note(
                    "build-failed",
                    f"{host.name}: make LLVM=1 {targets[host.name]} failed; no clang build",
                    host.name,
                    "\n".join(make.log),
                )
            )
            return []
        v = make.variant(specs[host.name], base, kconfig, solver)
        why = "LLVM=1 (clang): the second toolchain"
        lane = Lane(make, v, defconfig, make.compiler_version(), relevant, why, toolchain="LLVM=1")
        lane.pending = dict(v.spec.late)
        return [lane]

    def _drop(self, c: Candidate, reason: str) -> None:
        """A planned variant that is not built: in the plan's dropped list and a Note."""
        extra = c.flip_label or ("header users" if c.why is Why.FLIP else "")
        config = " ".join([c.spec.target, *([extra] if extra else [])])
        what = f"{c.spec.arch} {c.spec.target}" + (f" with {extra}" if extra else " (base)")
        self.dropped.append(
            PlannedVariant(
                arch=c.spec.arch, config=config, flip=c.flip_label, objects=c.objects, reason=reason
            )
        )
        self.notes.append(
            note(
                "variant-dropped",
                f"{what} not built: {reason}",
                c.spec.arch,
                f"planned for: {c.reason}",
            )
        )
