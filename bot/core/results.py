"""What checks produce: Finding (mailable), Note (never mailed), CheckResult.

One definition used by every check, the pipeline, the page, the JSON and the
mail. A `Finding` is a problem the series introduces, new against the base;
a `Note` is a fact about the run; a `CheckResult` carries both with the
check's status.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, computed_field

_NUMS = re.compile(r"\b\d+\b")
_QUOTED_LINE = re.compile(r":\d+(:\d+)?")


def normalize_message(message: str) -> str:
    """Message text without line/column numbers, so moved code compares equal."""
    return _NUMS.sub("N", _QUOTED_LINE.sub("", message)).strip()


class Finding(BaseModel):
    """One problem a check found, attributed to the first patch that causes it."""

    model_config = ConfigDict(frozen=True)

    check: str  # "build", "semantic", "kernel-doc", "checkpatch"
    kind: str  # rule or diagnostic kind: "error", "warning", "removed-member", ...
    severity: str  # "error", "warning", "check"/"info"
    patch: int | None  # 1-based index in series.patches; None = the series as a whole
    file: str = ""
    line: int | None = None
    column: int | None = None
    message: str = ""
    option: str = ""  # e.g. "-Wunused-but-set-variable"
    excerpt: str = ""  # source lines around `line`, numbered, offending line marked
    source_line: str = ""
    arch: str = ""
    config: str = ""  # "defconfig MIGRATION=n"
    symbols: dict[str, str] = {}  # symbols that differ from the base config
    compiler: str = ""
    reproduce: tuple[str, ...] = ()  # commands that reproduce it
    config_fragment: str = ""
    detail: str = ""  # free text: why and where it breaks (e.g. which configs build the file)
    title: str = ""  # what broke, in the check's own words ("use of a removed struct member")

    @property
    def identity(self) -> tuple[str, int | None, str]:
        """What makes two findings one problem: fingerprint, line and arch. The line is
        in (the fingerprint leaves it out to compare with the base, but two uses of a
        removed member are two problems); the patch is not (the first patch owns it)."""
        return (self.fingerprint, self.line, self.arch)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fingerprint(self) -> str:
        key = "\0".join((self.check, self.kind, self.file, normalize_message(self.message)))
        return hashlib.sha1(key.encode()).hexdigest()[:16]


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """Each problem once (by `identity`), the lowest patch kept, in report order."""
    seen: dict[tuple[str, int | None, str], Finding] = {}
    for f in sorted(findings, key=lambda f: (f.patch or 0, f.check, f.file, f.line or 0)):
        seen.setdefault(f.identity, f)
    return list(seen.values())


class Severity(StrEnum):
    """How bad a finding is, worst first (the order of reports and pages)."""

    ERROR = "error"
    WARNING = "warning"
    CHECK = "check"  # checkpatch's CHECK: style, page-only by default


def severity_rank(severity: str) -> int:
    """0 for the worst; unknown words sort last."""
    order = [s.value for s in Severity]
    return order.index(severity) if severity in order else len(order)


class Note(BaseModel):
    """A fact about the run, not a problem of the series: page and JSON only, never mailed.

    Examples: an object compiled in no variant, a variant Kconfig refused, a
    toolchain missing, a variant dropped for the budget.
    """

    model_config = ConfigDict(frozen=True)

    check: str
    kind: str  # "not-built", "config-refused", "toolchain-missing", "variant-dropped", ...
    message: str
    arch: str = ""
    config: str = ""
    detail: str = ""


class PlannedVariant(BaseModel):
    """A build variant the build check planned: built (with its objects) or dropped (why)."""

    model_config = ConfigDict(frozen=True)

    arch: str
    config: str  # "defconfig MIGRATION=n"
    flip: str | None = None  # "MIGRATION=n"; None for an arch's base variant
    objects: tuple[str, ...] = ()
    reason: str = ""  # why it was planned (built) or dropped


class Uncompiled(BaseModel):
    """Something the series changes that no tested config compiled, and what would."""

    model_config = ConfigDict(frozen=True)

    what: str  # an object ("mm/migrate_device.o") or a file
    needs: str = ""  # "CONFIG_DEVICE_MIGRATION", "ARCH=powerpc", ...


class SuiteCounts(BaseModel):
    """A test suite the runtime check ran: its tests passed, failed, skipped at the base
    and after the series (None: not run there, or it did not get to run its tests)."""

    model_config = ConfigDict(frozen=True)

    suite: str  # "vma", "kunit cmdline"
    kind: str  # "host" or "kunit"
    base: tuple[int, int, int] | None = None  # (passed, failed, skipped)
    after: tuple[int, int, int] | None = None
    state_base: str = ""  # "passed", "failed", "build failed", "not run", ...
    state_after: str = ""


class UncoveredLines(BaseModel):
    """Changed lines of one file that no built variant compiled, and why."""

    model_config = ConfigDict(frozen=True)

    file: str
    lines: tuple[int, ...]
    reason: str  # "symbol unsatisfiable", "arch not built", "no user compiled", "budget",
    # "build error"


def line_ranges(lines: Sequence[int]) -> str:
    """[3, 4, 5, 9] → "3-5,9"."""
    out: list[str] = []
    start = prev = None
    for n in sorted(lines):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
        start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(out)


class Coverage(BaseModel):
    """Patch coverage: how many changed .c/.h lines some built variant compiled."""

    model_config = ConfigDict(frozen=True)

    lines: int = 0
    covered: int = 0
    uncovered: tuple[UncoveredLines, ...] = ()

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.lines if self.lines else 100.0


class CheckStatus(StrEnum):
    """How a check ended (KCIDB's split: FOUND is the code's fault, ERRORED is ours)."""

    PASSED = "passed"  # ran to the end, nothing new
    FOUND = "found"  # ran to the end, findings
    ERRORED = "errored"  # did not complete (crash, timeout, missing tool)
    SKIPPED = "skipped"  # not run (nothing for it in the series, disabled)


class CheckResult(BaseModel):
    """What one check returns: findings (mailable), notes (never mailed), its build plan."""

    model_config = ConfigDict(frozen=True)

    status: CheckStatus
    findings: tuple[Finding, ...] = ()
    notes: tuple[Note, ...] = ()
    seconds: float = 0.0
    # a fault of ours that left the result incomplete (a toolchain missing): the series
    # is held and retried, and nothing of this run is mailed
    fault: str = ""
    uncompiled: tuple[Uncompiled, ...] = ()  # build: changed, compiled in no tested config
    variants: tuple[PlannedVariant, ...] = ()  # build: the variants built
    dropped: tuple[PlannedVariant, ...] = ()  # build: variants planned but not built
    suites: tuple[SuiteCounts, ...] = ()  # runtime: the test suites run
    coverage: Coverage | None = None  # build: changed lines compiled (None: not measured)

    @classmethod
    def of(
        cls, findings: Iterable[Finding], notes: Iterable[Note] = (), **extra: object
    ) -> CheckResult:
        """A completed check's result: FOUND when it has findings, else PASSED."""
        found = tuple(findings)
        status = CheckStatus.FOUND if found else CheckStatus.PASSED
        return cls.model_validate(
            {"status": status, "findings": found, "notes": tuple(notes), **extra}
        )
