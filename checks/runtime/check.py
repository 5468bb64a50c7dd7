"""The runtime check's run: which suites, at which commits, and what is new.

Each selected suite is a `Subject` that builds and runs at whatever commit the
worktree has checked out. A cheap one runs at the base and after each patch
(a host program that did not change is not run again: the same binary gives
the same result); a dear one (KUnit, the maple tree) runs after the series
first, and at the base and the patches only when it fails there. A failure
is run again once (a test that then passes is a Note, "flaky"); a suite that
fails at the base is a Note, never a Finding; a test that fails after the
series and passed at the base is a Finding of the first patch it fails at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.diff import parse_diff
from bot.core.results import CheckResult, Finding, Note, SuiteCounts
from checks.base import CheckContext
from checks.runtime.host import HostBench
from checks.runtime.kunitrun import KunitBench, choose_platform, reproduce
from checks.runtime.kvmprobe import kvm_in_sandbox
from checks.runtime.outcome import BUILD, RunState, SuiteRun
from checks.runtime.table import (
    HostSuite,
    KunitSuite,
    Table,
    host_suites,
    kunit_files,
    kunit_suite,
)

log = logging.getLogger("lorebot.checks.runtime")

TITLES = {
    "test-failure": "test failure",
    "test-build-failure": "test suite no longer builds",
}


@dataclass
class Subject:
    """One suite to run: how to run it at the checked-out commit, and how to name it."""

    name: str  # "vma", "kunit cmdline"
    kind: str  # "host" or "kunit"
    file: str  # where a reader finds it: tools/testing/vma, lib/cmdline_kunit.c
    # where it runs: "each" (the base and after every patch: cheap), "ends" (the base,
    # then after the series: KUnit, whose build at the base warms the build dir for the
    # series), "head" (after the series first: a dear host run)
    policy: str
    reproduce: tuple[str, ...]
    # trusted -> the failed build's run, or None when it built (KUnit: kunit.py does both)
    build: Callable[[bool], SuiteRun | None]
    test: Callable[[bool], SuiteRun]  # trusted -> its run at the checked-out commit
    version: Callable[[], str] = lambda: ""  # what was built (a host program's hash)
    results: dict[int, SuiteRun] = field(default_factory=dict)  # step -> its run
    memo: dict[str, SuiteRun] = field(default_factory=dict)  # built program -> its run


def _note(kind: str, message: str, detail: str = "") -> Note:
    return Note(check="runtime", kind=kind, message=message, detail=detail)


class RuntimeRun:
    """One run of the runtime check over one series."""

    def __init__(self, ctx: CheckContext, table: Table):
        self.ctx = ctx
        self.cfg = ctx.settings.runtime
        self.table = table
        self.wt = ctx.worktree.resolve()
        self.root = ctx.cache_dir / "runtime" / f"{ctx.applied.tree or 'tree'}-{self.wt.name}"
        self.steps = [(0, ctx.base), *ctx.commits]
        self.at_step: int | None = None
        self.findings: list[Finding] = []
        self.notes: list[Note] = []
        self.start = time.monotonic()

    # -- selection -------------------------------------------------------------
    def changed(self) -> list[str]:
        paths: dict[str, None] = {}
        for index, _ in self.ctx.commits:
            for f in parse_diff(self.ctx.patch_diffs.get(index, "")):
                for p in (f.old_path, f.new_path):
                    if p:
                        paths[p] = None
        return list(paths)

    def subjects(self, changed: list[str]) -> list[Subject]:
        out = [self._host(s) for s in host_suites(self.table, changed)]
        head = self.ctx.head
        texts: dict[str, str | None] = {}

        def read(path: str) -> str | None:
            if path not in texts:
                blob = self.ctx.git.read_blobs([f"{head}:{path}"]).get(f"{head}:{path}")
                texts[path] = blob.decode("utf-8", "replace") if blob is not None else None
            return texts[path]

        files = kunit_files(self.table, changed, read)
        if len(files) > self.cfg.max_kunit_suites:
            self.notes.append(
                _note(
                    "kunit-limit",
                    f"{len(files)} KUnit tests selected, runtime.max_kunit_suites is "
                    f"{self.cfg.max_kunit_suites}; not run: "
                    + ", ".join(files[self.cfg.max_kunit_suites :]),
                )
            )
            files = files[: self.cfg.max_kunit_suites]
        for path in files:
            makefile = read(path.rsplit("/", 1)[0] + "/Makefile") or ""
            suite = kunit_suite(path, read(path) or "", makefile)
            if suite is None:
                self.notes.append(
                    _note("kunit-unknown", f"{path}: no obj-$(CONFIG_...) line builds it; not run")
                )
                continue
            out.append(self._kunit(suite))
        return out

    def _host(self, suite: HostSuite) -> Subject:
        bench = HostBench(
            self.ctx.runner,
            self.ctx.sandbox,
            self.wt,
            self.root / "host",
            jobs=self.ctx.settings.build.jobs,
            build_seconds=self.cfg.build_seconds,
            run_seconds=self.cfg.run_seconds,
        )

        return Subject(
            name=suite.name,
            kind="host",
            file=suite.dir,
            policy="each" if suite.seconds <= self.cfg.cheap_seconds else "head",
            reproduce=(suite.reproduce,),
            build=lambda trusted: bench.build(suite, trusted),
            test=lambda trusted: bench.run(suite),
            version=lambda: bench.program_hash(suite),
        )

    def kunit_platform(self) -> tuple[str, bool]:
        """Where KUnit boots and whether with KVM (choose_platform); the KVM probe runs
        only when the setting may pick qemu, and "qemu" without KVM says so in a Note."""
        setting = self.cfg.kunit_platform
        remember = self.ctx.cache_dir / "runtime" / "kvm-probe.json"
        why = "" if setting == "um" else kvm_in_sandbox(self.ctx.runner, self.ctx.sandbox, remember)
        platform, kvm = choose_platform(setting, why)
        if platform == "qemu" and not kvm and not any(n.kind == "kunit-no-kvm" for n in self.notes):
            self.notes.append(
                _note(
                    "kunit-no-kvm",
                    "KUnit runs under QEMU without KVM (emulated, slower): KVM is unusable here",
                    f'{why}. runtime.kunit_platform = "auto" runs KUnit on User Mode Linux '
                    "where KVM is unusable",
                )
            )
        return platform, kvm

    def _kunit(self, suite: KunitSuite) -> Subject:
        platform, kvm = self.kunit_platform()
        bench = KunitBench(
            self.ctx.runner,
            self.ctx.sandbox,
            self.wt,
            self.root,
            self.ctx.cache_dir / "ccache",
            platform=platform,
            kvm=kvm,
            jobs=self.ctx.settings.build.jobs,
            boot_seconds=self.cfg.kunit_seconds,
            step_seconds=self.cfg.kunit_build_seconds,
        )
        return Subject(
            name=f"kunit {suite.name}",
            kind="kunit",
            file=suite.file,
            policy="ends",
            reproduce=reproduce(suite, platform, kvm),
            build=lambda trusted: None,
            test=lambda trusted: bench.run(suite, trusted),
        )

    # -- running ---------------------------------------------------------------
    def checkout(self, index: int) -> None:
        if self.at_step != index:
            sha = dict(self.steps)[index]
            self.ctx.git.out("checkout", "-q", "--detach", sha, timeout=300)
            self.at_step = index

    def at(self, s: Subject, index: int, again: bool = False) -> SuiteRun:
        """`s` at step `index` (0 = the base), run once per step unless `again`."""
        if index in s.results and not again:
            return s.results[index]
        self.checkout(index)
        self.ctx.progress(
            f"runtime: {s.name} {'at the base' if index == 0 else f'after patch {index}'}", None
        )
        trusted = index == 0 and self.ctx.trusted_base
        r = s.build(trusted)
        if r is None:
            # the same program at another step is not run again (but by the flaky guard)
            version = s.version()
            if version and version in s.memo and not again:
                r = s.memo[version]
            else:
                r = s.test(trusted)
                if version and r.ran:
                    s.memo.setdefault(version, r)
        if not again:
            s.results[index] = r
        log.info("runtime %s step %d: %s", s.name, index, r.state)
        return r

    def run(self) -> CheckResult:
        commits = self.ctx.commits
        if not commits:
            return CheckResult.of([])
        subjects = self.subjects(self.changed())
        if not subjects:
            return CheckResult.of([], self.notes)
        head_ref = self.ctx.git.out("rev-parse", "--abbrev-ref", "HEAD")
        head_sha = self.ctx.git.out("rev-parse", "HEAD")
        try:
            self._run(subjects)
        finally:
            target = head_ref if head_ref != "HEAD" else head_sha
            self.ctx.git.out(
                "checkout", "-q", *([] if head_ref != "HEAD" else ["--detach"]), target
            )
        suites = tuple(self._counts(s) for s in subjects)
        return CheckResult.of(
            self.findings,
            self.notes,
            suites=suites,
            seconds=round(time.monotonic() - self.start, 2),
        )

    def _run(self, subjects: list[Subject]) -> None:
        last = self.steps[-1][0]
        broken: set[str] = set()  # suites that fail at the base: only the head matters
        for index, _ in self.steps:
            for s in subjects:
                wanted = s.policy == "each" or (s.policy == "ends" and index in (0, last))
                if not wanted or (s.name in broken and index != last):
                    continue
                r = self.at(s, index)
                if index == 0 and not r.ok:
                    broken.add(s.name)
        for s in subjects:
            self.at(s, last)
            self._judge(s, last)
        self.ctx.progress("runtime: done", 1.0)

    def _judge(self, s: Subject, last: int) -> None:
        """Findings and notes of one suite from its runs (running more where needed)."""
        after = s.results[last]
        if after.ok:
            return
        failing = set(after.failing)
        if after.state is not RunState.BUILD_FAILED:
            again = self.at(s, last, again=True)
            flaky = sorted(failing - again.failing) if again.ran else []
            for name in flaky:
                self.notes.append(
                    _note(
                        "flaky",
                        f"{s.name}: {name} failed after the series and passed when run again; "
                        "flaky, not reported",
                        s.reproduce[-1],
                    )
                )
            if again.ran or again.state == after.state:
                failing &= set(again.failing) | ({BUILD} if not again.ran else set())
            if again.ok:
                s.results[last] = again
                return
        if s.results[last].state is RunState.ERRORED:
            self.notes.append(
                _note(
                    "did-not-finish",
                    f"{s.name}: did not finish after the series (time limit, or no results)",
                    "\n".join(s.results[last].tail.splitlines()[-10:]),
                )
            )
            return
        if not failing:
            return
        base = self.at(s, 0)
        if not base.ok:
            what = ", ".join(sorted(base.failing)[:5]) or base.state.value
            self.notes.append(
                _note(
                    "fails-at-base",
                    f"{s.name}: {base.state.value} at the base already ({what}); "
                    "its failures after the series are not reported",
                    "\n".join(base.tail.splitlines()[-10:]),
                )
            )
            return
        # one finding per patch that makes tests fail (one cause), naming every test
        order = [f.name for f in after.failures]
        by_patch: dict[int, list[str]] = {}
        for name in sorted(failing, key=lambda n: order.index(n) if n in order else 0):
            by_patch.setdefault(self._first_failing(s, name, last), []).append(name)
        for index, names in sorted(by_patch.items()):
            self.findings.append(self._finding(s, names, index, s.results[index]))

    def _first_failing(self, s: Subject, name: str, last: int) -> int:
        for index, _ in self.steps[1:]:
            if name in self.at(s, index).failing:
                return index
        return last

    def _finding(self, s: Subject, names: list[str], index: int, run: SuiteRun) -> Finding:
        build = names == [BUILD]
        kind = "test-build-failure" if build else "test-failure"
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        several = len(names) > 1
        message = (
            f"the {s.name} test suite no longer builds"
            if build
            else f"{s.name}: test{'s' if several else ''} {shown} fail{'' if several else 's'}"
        )
        excerpts = [f.excerpt for n in names[:3] if (f := run.failure(n)) and f.excerpt]
        excerpt = "\n".join("\n".join(excerpts).splitlines()[:30])
        excerpt = excerpt or "\n".join(run.tail.splitlines()[-20:])
        base = s.results.get(0)
        counts = (
            f"at the base {base.passed} passed, {base.failed} failed, {base.skipped} skipped; "
            if base and base.ran
            else ""
        )
        if run.ran:
            counts += f"after patch {index} {run.passed} passed, {run.failed} failed"
        return Finding(
            check="runtime",
            kind=kind,
            severity="error",
            patch=index,
            file=s.file,
            message=message,
            excerpt=excerpt,
            reproduce=s.reproduce,
            detail=f"passes at the base, fails after patch {index} (run twice)\n{counts}".strip(),
            title=TITLES[kind],
        )

    def _counts(self, s: Subject) -> SuiteCounts:
        last = self.steps[-1][0]
        base, after = s.results.get(0), s.results.get(last)
        return SuiteCounts(
            suite=s.name,
            kind=s.kind,
            base=base.counts if base else None,
            after=after.counts if after else None,
            state_base=base.state.value if base else "not run",
            state_after=after.state.value if after else "not run",
        )
