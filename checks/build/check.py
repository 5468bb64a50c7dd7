"""The build check: baseline at the base, then each patch's affected objects, per variant.

Flow: impact analysis of every patch (at its commit) → arches and variants →
`make olddefconfig` per variant, verified → checkout the base and build all
affected objects (the baseline) → checkout each patch in turn and rebuild the
objects that patch affects → diagnostics absent from the variant's baseline
become findings, attributed to the first patch after which they appear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from checks.base import CheckContext, Finding
from checks.build.diagnostics import Diagnostic, PathMap, excerpt, parse
from checks.build.impact import Impact, analyze
from checks.build.kbuild import ObjectChain
from checks.build.make import FIXED, Make, config_args
from checks.build.toolchains import Arch, load_arches
from checks.build.tree import GitTree
from checks.build.variants import (
    Variant,
    VariantSpec,
    arch_objects,
    buildable,
    flip_needed,
    fragment,
    label,
    plan,
    select_arches,
    symbols_diff,
)

log = logging.getLogger("lorebot.checks.build")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Lane:
    """One variant being built: its make, verified config and what it reports."""

    make: Make
    variant: Variant
    defconfig: dict[str, str]
    compiler: str
    relevant: tuple[str, ...]  # symbols worth showing in `symbols`
    baseline: set[tuple[str, str, str, str]] = field(default_factory=set)

    @property
    def odir(self) -> Path:
        return self.make.odir(self.variant.spec)

    @property
    def arch(self) -> Arch:
        return self.make.arch

    @property
    def config_label(self) -> str:
        return label(self.variant.spec.target, self.defconfig, self.variant.config,
                     self.variant.spec.requests)

    def symbols(self) -> dict[str, str]:
        names = [*self.variant.spec.requests, *self.variant.helpers, *self.relevant]
        return symbols_diff(self.defconfig, self.variant.config, names)

    def objects(self, chains: Sequence[ObjectChain], worktree: Path) -> list[str]:
        """The chains' objects this variant can build (symbol chain on, source present)."""
        return [o.object for o in arch_objects(chains, self.arch)
                if buildable(o, self.variant.config) and (worktree / o.source).exists()]


def _parallel(fn: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    if jobs <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        return list(pool.map(fn, items))


def _info(kind: str, message: str, arch: str = "", detail: str = "") -> Finding:
    return Finding(check="build", kind=kind, severity="info", patch=None, message=message,
                   arch=arch, detail=detail)


class BuildRun:
    """One run of the build check over one series."""

    def __init__(self, ctx: CheckContext, table: dict[str, Arch] | None = None):
        self.ctx = ctx
        self.cfg = ctx.settings.build
        self.table = table or load_arches()
        self.start = time.monotonic()
        self.findings: dict[tuple[str, str, str, str], Finding] = {}
        self.notes: list[Finding] = []
        self.wt = ctx.worktree.resolve()

    def git(self, *args: str) -> str:
        return self.ctx.runner.run(["git", *args], cwd=self.wt, timeout=300, check=True,
                                   name="git").stdout.strip()

    def llvm(self, arch: Arch) -> bool:
        """LLVM=1 when configured and known to work for the arch (else its gcc)."""
        return self.cfg.llvm and arch.llvm

    def over_budget(self) -> bool:
        return time.monotonic() - self.start > self.cfg.budget_seconds

    def run(self) -> list[Finding]:
        commits = self.ctx.commits
        if not commits:
            return []
        head_ref = self.git("rev-parse", "--abbrev-ref", "HEAD")
        head_sha = self.git("rev-parse", "HEAD")
        try:
            self._run(commits)
        finally:
            target = head_ref if head_ref != "HEAD" else head_sha
            self.git("checkout", "-q", *([] if head_ref != "HEAD" else ["--detach"]), target)
        return [*self.notes, *self.findings.values()]

    def _impacts(self, commits: list[tuple[int, str]]) -> dict[int, Impact]:
        out = {}
        head = self.git("rev-parse", "HEAD")
        for index, sha in commits:
            diff = self.ctx.patch_diffs.get(index) or self.git("show", "--format=", sha)
            tree = GitTree(self.ctx.runner, self.wt, sha, grep_worktree=sha == head)
            out[index] = analyze(diff, tree,
                                 self.cfg.max_header_objects)
            for note in out[index].notes:
                log.info("patch %d: %s", index, note)
        return out

    def _run(self, commits: list[tuple[int, str]]) -> None:
        self.ctx.progress("build: impact analysis", 0.0)
        impacts = self._impacts(commits)
        all_objects = list({o.object: o for i in impacts.values() for o in i.objects}.values())
        if not all_objects:
            return
        arches = []
        for a in select_arches(list(impacts.values()), self.table, self.cfg.arches):
            if a.available(self.llvm(a)):
                arches.append(a)
            else:
                self.notes.append(_info(
                    "toolchain-missing", f"{a.name}: {a.compiler(self.llvm(a))} not found; "
                    f"not built for {a.name} (apt-get install {a.package})", a.name))
        base = self.ctx.base
        self.git("checkout", "-q", "--detach", base)
        lanes = self._lanes(arches, impacts, base)
        # W=1 when the series changes a source file. One make call per variant and step
        # with W=1 for all its objects measured faster than splitting W=1 objects into
        # a call of their own (3.2 s vs 7.5 s), and the flags stay the same at every step.
        w1 = self.cfg.w1 and any(i.w1_objects for i in impacts.values())
        steps = [(0, base), *commits]
        for n, (index, sha) in enumerate(steps):
            if self.over_budget():
                self.notes.append(_info("budget-exceeded", f"build budget of "
                                        f"{self.cfg.budget_seconds} s used up; patches "
                                        f"{index} and later not built"))
                break
            self.ctx.progress(f"build: {'baseline' if index == 0 else f'patch {index}'}",
                              n / len(steps))
            if index:
                self.git("checkout", "-q", "--detach", sha)
            chains = all_objects if index == 0 else list(impacts[index].objects)
            self._step(index, lanes, chains, w1)
        self.ctx.progress("build: done", 1.0)

    def _lanes(self, arches: list[Arch], impacts: dict[int, Impact], base: str) -> list[Lane]:
        """Verified variants, bases first, up to max_variants that really differ."""
        ctx = self.ctx
        root = ctx.cache_dir / "build" / f"{ctx.applied.tree or 'tree'}-{self.wt.name}"
        makes = {a.name: Make(ctx.runner, self.wt, a,
                              root / (a.name + ("-llvm" if self.llvm(a) else "")),
                              ctx.cache_dir / "ccache",
                              self.llvm(a)) for a in arches}
        specs = plan(arches, list(impacts.values()), self.cfg.presets)
        defconfigs = dict(zip(makes, _parallel(
            lambda m: m.defconfig(self.cfg.presets.get(m.arch.name, m.arch.defconfig), base),
            list(makes.values()), self.cfg.jobs), strict=True))
        for name, cfg in defconfigs.items():
            if cfg is None:
                self.notes.append(_info("build-failed", f"{name}: make "
                                        f"{makes[name].arch.defconfig} failed; not built for "
                                        f"{name}", name, "\n".join(makes[name].log)))
        kconfig = GitTree(ctx.runner, self.wt, base, grep_worktree=True)  # checked out at base
        relevant = tuple(dict.fromkeys(f.symbol for i in impacts.values() for f in i.flips))
        lanes: list[Lane] = []
        compilers: dict[str, str] = {}
        seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
        bases: dict[str, dict[str, str]] = {}
        pending = [s for s in specs if defconfigs.get(s.arch) is not None]
        while pending and len(lanes) < self.cfg.max_variants:
            wave: list[VariantSpec] = []
            for s in list(pending):
                if len(lanes) + len(wave) >= self.cfg.max_variants:
                    break
                if s.flip and s.arch not in bases:
                    continue  # wait for this arch's base
                pending.remove(s)
                if s.flip and not flip_needed(bases[s.arch], s.flip):
                    continue
                wave.append(s)
            if not wave:
                break
            ctx.progress(f"build: configuring {len(wave)} variants", None)
            done = _parallel(lambda s: makes[s.arch].variant(s, base, kconfig), wave,
                             self.cfg.jobs)
            for v in done:
                arch = v.spec.arch
                if v.spec.flip is None:
                    bases[arch] = v.config
                if v.flip_refused:
                    self.notes.append(_info(
                        "config-refused", f"{arch}: {v.spec.target} with CONFIG_"
                        f"{v.spec.flip.symbol if v.spec.flip else ''} refused by Kconfig: "
                        f"{'; '.join(v.refused)}; variant not built", arch,
                        f"helpers tried: {v.helpers}"))
                    continue
                key = (arch, frozenset(v.config.items()))
                if key in seen:
                    continue
                seen.add(key)
                if arch not in compilers:
                    compilers[arch] = makes[arch].compiler_version()
                lanes.append(Lane(makes[arch], v, defconfigs[arch] or {}, compilers[arch],
                                  relevant))
        for obj in self._unbuilt(lanes, impacts):
            self.notes.append(_info("not-built", f"{obj}: its Kconfig symbols are off in every "
                                    "variant built; not compiled"))
        return lanes

    def _unbuilt(self, lanes: list[Lane], impacts: dict[int, Impact]) -> list[str]:
        objs = {o.object: o for i in impacts.values() for o in i.objects}
        return [f"{name} ({' '.join(o.symbols)})" for name, o in objs.items()
                if not any(o.object in lane.objects([o], self.wt) for lane in lanes)]

    def _step(self, index: int, lanes: list[Lane], chains: list[ObjectChain],
              w1: bool) -> None:
        """Build the objects of one step in every lane; record baseline or new diagnostics."""
        parallel = max(1, min(self.cfg.jobs, len(lanes)))
        jobs = max(1, self.cfg.jobs // parallel)

        def build(lane: Lane) -> tuple[Lane, list[Diagnostic], list[str]]:
            objects = lane.objects(chains, self.wt)
            diags: list[Diagnostic] = []
            if objects:
                r = lane.make.build(lane.odir, objects, w1=w1, jobs=jobs)
                diags = parse(r.output, PathMap(str(self.wt), str(lane.odir)))
                if not r.ok and not any(d.severity == "error" for d in diags):
                    self._failed(lane, index, r.output)
            return lane, diags, objects

        for lane, diags, objects in _parallel(build, lanes, parallel):
            if index == 0:
                lane.baseline |= {d.key for d in diags}
                continue
            for d in diags:
                if d.key in lane.baseline:
                    continue
                if d.key in self.findings:
                    self._also(d, lane)
                    continue
                self.findings[d.key] = self._finding(index, lane, d, objects, w1)

    def _failed(self, lane: Lane, index: int, output: str) -> None:
        """make failed without a compiler error (prepare, a tool, a timeout): say so once."""
        where = f"{lane.arch.name} {lane.config_label}"
        if any(n.kind == "build-failed" and (n.arch, n.config) == (lane.arch.name,
                                                                   lane.config_label)
               for n in self.notes):
            return
        tail = "\n".join(output.strip().splitlines()[-15:])
        self.notes.append(Finding(
            check="build", kind="build-failed", severity="info", patch=None, arch=lane.arch.name,
            config=lane.config_label, message=f"make failed for {where} "
            f"({'baseline' if index == 0 else f'after patch {index}'}) with no compiler "
            "error; its results are incomplete", detail=tail))

    def _also(self, d: Diagnostic, lane: Lane) -> None:
        f = self.findings[d.key]
        where = f"{lane.arch.name} {lane.config_label}"
        if where not in f.detail and where != f"{f.arch} {f.config}":
            extra = f"also with {where}"
            self.findings[d.key] = f.model_copy(
                update={"detail": (f.detail + "\n" + extra).strip()})

    def _finding(self, index: int, lane: Lane, d: Diagnostic, objects: list[str],
                 w1: bool) -> Finding:
        text = (self.wt / d.file).read_text(errors="replace") if (self.wt / d.file).is_file() \
            else ""
        lines = text.splitlines()
        symbols = lane.symbols()
        source = d.include_chain[-1].rsplit(":", 1)[0] if d.include_chain else d.file
        obj = next((o for o in objects if o[:-2] == source[:-2]), objects[0] if objects else "")
        setup = {**lane.variant.helpers, **lane.variant.spec.requests}
        fixed = {s: v for s, v in FIXED.items() if s in lane.defconfig}
        changed = {s: v for s, v in {**fixed, **setup}.items()
                   if v != lane.defconfig.get(s, "n")}
        # what a person runs in their own tree (the report says how to get the
        # patches applied): a build dir of their own, not our cache path
        odir = Path("build")
        repro = [lane.make.shown(odir, lane.variant.spec.target)]
        if changed:
            repro.append(" ".join(["./scripts/config", "--file", f"{odir}/.config",
                                   *config_args(changed)]))
            repro.append(lane.make.shown(odir, "olddefconfig"))
        repro.append(lane.make.shown(odir, *(["W=1"] if w1 else []), obj))
        detail = []
        if d.include_chain:
            detail.append("in file included from " + ", from ".join(d.include_chain))
        if d.function:
            detail.append(f"in function {d.function}()")
        detail += [f"note: {n}" for n in d.notes[:3]]
        return Finding(
            check="build", kind=d.severity, severity=d.severity, patch=index, file=d.file,
            line=d.line, column=d.column, message=d.message, option=d.option,
            excerpt=excerpt(text, d.line) if text else "",
            source_line=lines[d.line - 1] if 0 < d.line <= len(lines) else "",
            arch=lane.arch.name, config=lane.config_label, symbols=symbols,
            compiler=lane.compiler, reproduce=tuple(repro),
            config_fragment=fragment({**changed, **symbols}), detail="\n".join(detail),
        )
