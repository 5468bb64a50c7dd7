"""Thin shell: build and run a host suite (tools/testing/*) in the sandbox, kept warm.

The suites build in their own directory (objects, generated headers, the
program) and reach the tree by relative paths (`../../../mm/vma.c`). The tree
stays read-only: the suite's directory is a writable copy in the cache, placed
in a farm of links that mirrors the worktree (`<farm>/mm -> <worktree>/mm`), so
that its relative paths land in the tree. The copy is kept across runs (warm:
make rebuilds what changed); what a build at the base (a configured tree's
code) leaves is kept aside and restored before the next base build, so a
series' build never feeds a later run's baseline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bot.core.runner import Runner
from bot.core.sandbox import Sandbox
from checks.runtime.outcome import SuiteRun, not_built, parse_host, scrub
from checks.runtime.table import HostSuite

# ASan reserves terabytes of shadow address space: the address-space limit cannot hold
# for the suites' programs; their resident memory is bounded by ASan instead
_UNBOUNDED_AS = 2**62


@dataclass
class HostBench:
    """Where one worktree's host suites are built: the link farm and the trusted copies."""

    runner: Runner
    sandbox: Sandbox
    worktree: Path
    root: Path  # <cache>/runtime/<tree>-<slot>
    jobs: int = 2
    build_seconds: float = 900
    run_seconds: float = 900

    @property
    def farm(self) -> Path:
        return self.root / "farm"

    def work(self, suite: HostSuite) -> Path:
        return self.farm / suite.dir

    def trusted_copy(self, suite: HostSuite) -> Path:
        return self.root / "trusted" / suite.dir.replace("/", "-")

    def make_farm(self, suite: HostSuite) -> None:
        """Links to the worktree's entries at every level down to the suite's directory."""
        parts = Path(suite.dir).parts
        for depth in range(len(parts)):
            here = self.farm.joinpath(*parts[:depth])
            src = self.worktree.joinpath(*parts[:depth])
            here.mkdir(parents=True, exist_ok=True)
            keep = parts[depth]
            wanted = {e.name for e in src.iterdir()} - {keep}
            for e in here.iterdir():
                if e.name != keep and e.is_symlink() and e.name not in wanted:
                    e.unlink()
            for name in wanted:
                link = here / name
                target = src / name
                if link.is_symlink() and os.readlink(link) == str(target):
                    continue
                if link.is_symlink() or link.is_file():
                    link.unlink()
                elif link.is_dir():
                    continue  # another suite's copy (it needs none of this one's)
                link.symlink_to(target)
        work = self.work(suite)
        if work.is_symlink():  # a link while another suite was built
            work.unlink()
        work.mkdir(parents=True, exist_ok=True)

    def _rsync(self, src: Path, dest: Path, *extra: str, name: str) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        self.runner.run(
            ["rsync", "-a", "--delete", *extra, f"{src}/", f"{dest}/"],
            timeout=600,
            check=True,
            name=name,
        )

    def prepare(self, suite: HostSuite, trusted: bool) -> Path:
        """The suite's writable copy with the worktree's sources; at a trusted step, what
        the last trusted build left (else nothing: a clean build)."""
        self.make_farm(suite)
        work = self.work(suite)
        if trusted:
            copy = self.trusted_copy(suite)
            if copy.is_dir():
                self._rsync(copy, work, name="restore-trusted")
            else:
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir(parents=True)
        # the sources of the suite; its build products (ignored by git) stay
        self._rsync(
            self.worktree / suite.dir,
            work,
            "--exclude=*.o",
            "--filter=:- .gitignore",
            name="sync-suite",
        )
        self.sandbox.own(work)
        return work

    def build(self, suite: HostSuite, trusted: bool) -> SuiteRun | None:
        """make the suite's target; a SuiteRun when the build failed, else None."""
        work = self.prepare(suite, trusted)
        r = self.sandbox.run(
            self.runner,
            ["make", "-C", str(work), f"-j{self.jobs}", suite.target],
            cwd=work,
            ro=[self.worktree, self.farm],
            rw=[work],
            timeout=self.build_seconds,
            name=f"make-{suite.name}",
        )
        if trusted:
            self._rsync(work, self.trusted_copy(suite), name="keep-trusted")
        if r.ok:
            return None
        return not_built(self.clean(r.output), errored=r.timed_out, seconds=r.seconds)

    def program_hash(self, suite: HostSuite) -> str:
        """What the built program is (the same binary gives the same results)."""
        path = self.work(suite) / suite.program[0]
        if not path.is_file():
            return ""
        return hashlib.sha1(path.read_bytes()).hexdigest()

    def run(self, suite: HostSuite) -> SuiteRun:
        """Run the built program in the sandbox, in its directory, with the time limit."""
        work = self.work(suite)
        limits = dataclasses.replace(self.sandbox.limits, memory_bytes=_UNBOUNDED_AS)
        box = dataclasses.replace(self.sandbox, limits=limits)
        rss_mb = self.sandbox.limits.memory_bytes // 2**20
        start = time.monotonic()
        r = box.run(
            self.runner,
            list(suite.program),
            cwd=work,
            ro=[self.worktree, self.farm],
            rw=[work],
            env={
                "ASAN_OPTIONS": f"hard_rss_limit_mb={rss_mb}:detect_leaks=1",
                "UBSAN_OPTIONS": "print_stacktrace=1",
            },
            timeout=self.run_seconds,
            name=f"run-{suite.name}",
        )
        run = parse_host(self.clean(r.output), r.returncode, timed_out=r.timed_out)
        return dataclasses.replace(run, seconds=round(time.monotonic() - start, 2))

    def clean(self, text: str) -> str:
        """Output without this machine's paths."""
        return scrub(text, [str(self.farm), str(self.worktree), str(self.root)])
