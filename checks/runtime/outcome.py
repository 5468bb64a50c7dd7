"""What a suite's run printed, as frozen values (pure): tests passed, failed, skipped.

Two shapes of output: the host suites' own (vma's "Test X FAILED", memblock's
ksft "not ok N : name", the radix-tree programs' "BUG at func:line" and
"N of M tests passed", sanitizers' reports, an exit status), and KTAP, which a
KUnit run prints. A failing test is named in the suite's own words, without
numbers that change from run to run, so that the base and the series compare.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class RunState(StrEnum):
    """How one run of a suite ended."""

    PASSED = "passed"  # it ran, every test passed or was skipped
    FAILED = "failed"  # it ran, some test failed
    BUILD_FAILED = "build failed"  # it could not be built
    ERRORED = "errored"  # it did not get to report (a timeout, no results at all)


@dataclass(frozen=True)
class Failure:
    """One failing test: its name and the lines of output around it."""

    name: str
    excerpt: str = ""


@dataclass(frozen=True)
class SuiteRun:
    """One run of one suite at one commit."""

    state: RunState
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: tuple[Failure, ...] = ()
    tail: str = ""  # the end of its output (build errors, the last words of a crash)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state is RunState.PASSED

    @property
    def ran(self) -> bool:
        """It got to run its tests (passed or failed, not a build failure or timeout)."""
        return self.state in (RunState.PASSED, RunState.FAILED)

    @property
    def counts(self) -> tuple[int, int, int] | None:
        return (self.passed, self.failed, self.skipped) if self.ran else None

    @property
    def failing(self) -> frozenset[str]:
        return frozenset(f.name for f in self.failures)

    def failure(self, name: str) -> Failure | None:
        return next((f for f in self.failures if f.name == name), None)


BUILD = "(build)"  # the name a build failure goes by when compared with the base

_NUM = re.compile(r"0x[0-9a-fA-F]+|\b\d+\b")


def scrub(text: str, paths: Iterable[str]) -> str:
    """Output without this machine's paths (the tree's and the build dir's)."""
    for p in sorted({p.rstrip("/") for p in paths if p}, key=len, reverse=True):
        text = text.replace(p + "/", "").replace(p, ".")
    return text


def not_built(output: str, *, errored: bool, seconds: float) -> SuiteRun:
    """The run of a suite that could not be built (or did not finish building)."""
    lines = output.splitlines()
    tail = "\n".join(lines[-40:])
    errors = [ln for ln in lines if "error" in ln.lower()][:12]
    return SuiteRun(
        RunState.ERRORED if errored else RunState.BUILD_FAILED,
        failures=(Failure(BUILD, "\n".join(errors) or tail),),
        tail=tail,
        seconds=round(seconds, 2),
    )


def _around(lines: list[str], i: int, before: int = 3, after: int = 8) -> str:
    return "\n".join(lines[max(0, i - before) : i + after]).strip("\n")


_VMA_FAIL = re.compile(r"^Test (\w+) FAILED$")
_VMA_SUM = re.compile(r"^(\d+) tests run, (\d+) passed, (\d+) failed\.$")
_KSFT = re.compile(r"^(not ok|ok) \d+ :?\s*(.*?)(?:\s*#\s*(SKIP|skip).*)?$")
_OF = re.compile(r"^(?:[\w-]+: )?(\d+) of (\d+) tests passed$")
_BUG = re.compile(r"^BUG at (\w+):\d+")
_SAN = re.compile(r"(?:ERROR: (AddressSanitizer|LeakSanitizer): ([\w-]+(?: [\w-]+)*))")
_UBSAN = re.compile(r"^(\S+?):\d+:\d+: runtime error: (.*)$")
_ASSERT = re.compile(r"Assertion `(.*)' failed")


def parse_host(output: str, returncode: int, *, timed_out: bool = False) -> SuiteRun:
    """A host suite's run from its output and exit status."""
    lines = output.splitlines()
    failures: dict[str, Failure] = {}
    passed = failed = skipped = 0
    counted = False

    def fail(name: str, i: int) -> None:
        failures.setdefault(name, Failure(name, _around(lines, i)))

    for i, raw in enumerate(lines):
        line = raw.strip()
        if m := _VMA_FAIL.match(line):
            fail(m[1], i)
        elif m := _VMA_SUM.match(line):
            passed, failed, counted = int(m[2]), int(m[3]), True
        elif m := _KSFT.match(line):
            counted = True
            if m[3]:
                skipped += 1
            elif m[1] == "ok":
                passed += 1
            else:
                failed += 1
                fail(m[2].removesuffix(": failed").strip() or line, i)
        elif m := _OF.match(line):
            p, n = int(m[1]), int(m[2])
            passed, failed, counted = passed + p, failed + n - p, True
        elif m := _BUG.match(line):
            fail(m[1], i)
        elif m := _SAN.search(line):
            fail(f"{m[1]}: {m[2]}", i)
        elif m := _UBSAN.match(line):
            fail(f"UBSan: {_NUM.sub('N', m[2])} ({m[1].rsplit('/', 1)[-1]})", i)
        elif m := _ASSERT.search(line):
            fail(f"assertion {m[1]}", i)
    tail = "\n".join(lines[-30:])
    if any(not n.startswith("LeakSanitizer") for n in failures):
        # tests that failed returned early and left their objects: their leaks are theirs
        failures = {n: f for n, f in failures.items() if not n.startswith("LeakSanitizer")}
    if timed_out:
        return SuiteRun(RunState.ERRORED, passed, failed, skipped, tuple(failures.values()), tail)
    if returncode != 0 and not failures:
        why = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
        failures["(exit)"] = Failure("(exit)", f"the program ended with {why}\n{tail}")
    if not counted:
        failed = len(failures)
        passed = 0 if failures else 1
    bad = bool(failures) or failed > 0 or returncode != 0
    return SuiteRun(
        RunState.FAILED if bad else RunState.PASSED,
        passed,
        failed or len(failures),
        skipped,
        tuple(failures.values()),
        tail,
    )


_KTAP_RESULT = re.compile(r"^(not ok|ok) (\d+)(?: (?:- )?([^#]*?))?\s*(?:#\s*(\w+)(.*))?$")
_SUBTEST = re.compile(r"^# Subtest: (\S+)")


@dataclass
class _Suite:
    indent: int
    name: str
    notes: list[str] = field(default_factory=list)


def parse_ktap(output: str) -> SuiteRun | None:
    """KUnit's KTAP (as `kunit.py --raw_output=kunit` prints it); None when none was printed.

    Leaf tests are counted; a failing one is named "suite.test" with the
    diagnostic lines printed before its result as the excerpt. A suite that
    fails with no failing test of its own (a crash) counts as its own failure.
    """
    lines = [ln.rstrip() for ln in output.splitlines()]
    start = next(
        (i for i, ln in enumerate(lines) if ln.strip().startswith(("KTAP version", "TAP version"))),
        None,
    )
    if start is None:
        return None
    stack: list[_Suite] = []
    diag: list[str] = []
    passed = failed = skipped = 0
    failures: dict[str, Failure] = {}
    failed_in: set[str] = set()
    for ln in lines[start:]:
        indent = len(ln) - len(ln.lstrip())
        text = ln.strip()
        if m := _SUBTEST.match(text):
            stack.append(_Suite(indent, m[1]))
            diag = []
            continue
        m = _KTAP_RESULT.match(text)
        if not m:
            if text.startswith("#"):
                diag.append(text)
            continue
        name = (m[3] or "").strip()
        skip = (m[4] or "").upper() == "SKIP"
        closes = bool(stack) and stack[-1].indent > indent
        if closes:
            suite = stack.pop()
            if m[1] == "not ok" and suite.name not in failed_in and not skip:
                failed += 1
                failures.setdefault(suite.name, Failure(suite.name, "\n".join(diag[-15:])))
            diag = []
            continue
        prefix = ".".join(s.name for s in stack)
        full = f"{prefix}.{name}" if prefix else name
        if skip:
            skipped += 1
        elif m[1] == "ok":
            passed += 1
        else:
            failed += 1
            failures.setdefault(full, Failure(full, "\n".join([*diag[-15:], text])))
            failed_in.update(s.name for s in stack)
        diag = []
    state = RunState.FAILED if failed else RunState.PASSED
    return SuiteRun(
        state, passed, failed, skipped, tuple(failures.values()), "\n".join(lines[-30:])
    )
