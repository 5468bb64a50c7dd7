"""checkpatch: the tree's scripts/checkpatch.pl on each mailed patch, new issues only.

"New" means: on a line the patch adds. checkpatch also comments on context
lines and on files the patch only deletes from; those issues were already in
the tree and are dropped. Issues in the commit message (before the first
diff) belong to the patch itself and are kept, without a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.core.diff import HUNK, excerpt
from bot.core.results import CheckResult, Finding
from checks.base import CheckContext, Scope
from checks.basetools import run_base_tool, run_tool

_TERSE = re.compile(
    r"^(?P<file>.*?):(?P<line>\d+): (?P<sev>ERROR|WARNING|CHECK):"
    r"(?:(?P<type>[A-Z0-9_]+):)? ?(?P<msg>.*)$"
)


TITLES = {"error": "checkpatch error", "warning": "checkpatch warning", "check": "checkpatch check"}


@dataclass(frozen=True)
class Issue:
    """One line of `checkpatch.pl --terse --show-types` output."""

    line: int  # line of the patch file
    severity: str  # "error", "warning", "check"
    type: str
    message: str


@dataclass(frozen=True)
class PatchLine:
    """Where a line of a mailed patch sits: its file and new line number, if any."""

    text: str
    file: str = ""  # the file a hunk line belongs to
    new_line: int | None = None  # set for added ('+') and context lines
    added: bool = False
    in_hunk: bool = False  # a '+', '-' or ' ' line of a hunk


def parse_issues(output: str) -> list[Issue]:
    """checkpatch --terse --show-types output -> issues (other lines ignored)."""
    out = []
    for line in output.splitlines():
        m = _TERSE.match(line.strip())
        if m:
            out.append(
                Issue(int(m["line"]), m["sev"].lower(), m["type"] or m["sev"], m["msg"].strip())
            )
    return out


def map_patch(text: str) -> list[PatchLine]:
    """Each line of a mailed patch with the file and line it adds, for mapping issues back."""
    out: list[PatchLine] = []
    file = ""
    in_diff = False
    new_no = old_left = new_left = 0
    for raw in text.splitlines():
        h = HUNK.match(raw)
        if raw.startswith("diff --git "):
            old_left, new_left = 0, 0
            file = raw.split(" b/", 1)[1] if " b/" in raw else ""
            in_diff = True
        elif raw.startswith("+++ ") and not (old_left or new_left):
            file = "" if raw[4:] == "/dev/null" else raw[6:]
        elif h and file:
            new_no = int(h.group(3))
            old_left, new_left = int(h.group(2) or 1), int(h.group(4) or 1)
        elif (old_left or new_left) and raw[:1] in ("+", "-", " ", ""):
            kind = raw[:1]
            if kind == "-":
                old_left -= 1
                out.append(PatchLine(raw, file, None, False, True))
                continue
            line = new_no
            new_no += 1
            new_left -= 1
            if kind != "+":
                old_left -= 1
            out.append(PatchLine(raw, file, line, kind == "+", True))
            continue
        out.append(PatchLine(raw, file if in_diff and not raw.startswith("-- ") else ""))
        if raw.startswith("-- ") and in_diff:
            in_diff, file = False, ""
    return out


def new_issues(issues: list[Issue], lines: list[PatchLine]) -> list[tuple[Issue, PatchLine | None]]:
    """Issues on added lines, on files the patch adds to, and on the patch as a whole.

    Issues on context or removed lines were already in the tree, and issues
    about files the patch only removes lines from are not the patch's: dropped.
    """
    adds = {pl.file for pl in lines if pl.added}
    out: list[tuple[Issue, PatchLine | None]] = []
    for issue in issues:
        pl = lines[issue.line - 1] if 0 < issue.line <= len(lines) else None
        if pl is None or (not pl.in_hunk and not pl.file):
            out.append((issue, None))  # commit message, sign-off: the patch itself
        elif pl.added or (not pl.in_hunk and pl.file in adds):
            out.append((issue, pl))
    return out


class CheckpatchCheck:
    """scripts/checkpatch.pl on each patch as mailed."""

    name = "checkpatch"
    scope = Scope.PER_PATCH
    tools = ("perl",)
    moves_head = False
    titles = TITLES

    def run(self, ctx: CheckContext) -> CheckResult:
        return run_base_tool(
            ctx,
            self.name,
            "scripts/checkpatch.pl",
            self._run_all,
        )

    def _run_all(self, ctx: CheckContext, tools: Path, script: Path) -> list[Finding]:
        cfg = ctx.settings.checks.checkpatch
        options = list(cfg.options)
        for must in ("--terse", "--show-types"):
            if must not in options:
                options.append(must)
        if cfg.ignore:
            options.append("--ignore=" + ",".join(cfg.ignore))
        findings: list[Finding] = []
        with tempfile.TemporaryDirectory(prefix="checkpatch-") as tmp:
            os.chmod(tmp, 0o755)  # the sandbox's uid reads the patches
            for patch in ctx.series.patches:
                if not patch.mbox:
                    continue
                path = Path(tmp) / f"{patch.index:04d}.patch"
                path.write_bytes(patch.mbox)
                ctx.progress(f"checkpatch: patch {patch.index}", None)
                r = run_tool(
                    ctx,
                    tools,
                    ["perl", str(script), *options, str(path)],
                    cwd=ctx.worktree,
                    inputs=[Path(tmp)],
                    timeout=300,
                    name=f"checkpatch-{patch.index}",
                )
                lines = map_patch(patch.mbox.decode("utf-8", "replace"))
                findings += self._findings(patch.index, parse_issues(r.stdout), lines)
        return _with_excerpts(ctx, findings)

    @staticmethod
    def _findings(index: int, issues: list[Issue], lines: list[PatchLine]) -> list[Finding]:
        out = []
        for issue, pl in new_issues(issues, lines):
            out.append(
                Finding(
                    check="checkpatch",
                    kind=issue.type,
                    severity=issue.severity,
                    patch=index,
                    file=pl.file if pl else "",
                    line=pl.new_line if pl else None,
                    message=issue.message,
                    title=TITLES.get(issue.severity, "checkpatch"),
                    source_line=pl.text[1:].strip() if pl else "",
                )
            )
        return out


def _with_excerpts(ctx: CheckContext, findings: list[Finding]) -> list[Finding]:
    """Each finding on an added line with the one excerpt format, from its patch's commit."""
    commits = dict(ctx.commits)
    specs = [
        f"{commits[f.patch]}:{f.file}" if f.file and f.line and f.patch in commits else ""
        for f in findings
    ]
    blobs = ctx.git.read_blobs(s for s in specs if s)
    out = []
    for f, spec in zip(findings, specs, strict=True):
        data = blobs.get(spec) if spec else None
        if data is not None and f.line:
            lines = data.decode("utf-8", "replace").splitlines()
            f = f.model_copy(update={"excerpt": excerpt(lines, f.line)})
        out.append(f)
    return out
