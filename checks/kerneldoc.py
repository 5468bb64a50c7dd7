"""kernel-doc: the tree's scripts/kernel-doc -none -Wall on the C files a series changes.

Each changed file is extracted (`git cat-file`) at the base and after every
patch that touches it into a temporary directory, keeping its relative path,
so the worktree (at HEAD) is never checked out. A warning is compared as a
frozen (file, message without numbers) value: one that only moved is not new.
Warnings present at the end of the series and absent at the base are
reported, attributed to the first patch after which they appear.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.core.diff import excerpt, parse_diff
from bot.core.results import CheckResult, Finding, normalize_message
from checks.base import CheckContext, Scope
from checks.basetools import run_base_tool, run_tool

_WARNING = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+): (?P<sev>warning|error): (?P<msg>.*)$")

TITLES = {"kernel-doc": "kernel-doc warning"}


@dataclass(frozen=True)
class DocWarning:
    """One kernel-doc diagnostic; compared without its line number."""

    file: str
    line: int
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.file, normalize_message(self.message))


def parse_warnings(output: str) -> list[DocWarning]:
    """kernel-doc stderr -> warnings (paths as given on the command line)."""
    out = []
    for line in output.splitlines():
        m = _WARNING.match(line.strip())
        if m:
            out.append(DocWarning(m["file"], int(m["line"]), m["msg"].strip()))
    return out


def new_warnings(versions: list[tuple[int, list[DocWarning]]]) -> list[tuple[int, DocWarning]]:
    """(patch, warning) for warnings at the last version absent at the first (the base).

    `versions` is [(0, base warnings), (patch index, warnings after it), ...]
    for one file; a warning is attributed to the first patch from which it
    stays present up to the end.
    """
    if len(versions) < 2:
        return []
    base = {w.key for w in versions[0][1]}
    out = []
    for w in versions[-1][1]:
        if w.key in base:
            continue
        first = versions[-1][0]
        for index, warns in reversed(versions[1:]):
            if w.key not in {x.key for x in warns}:
                break
            first = index
        out.append((first, w))
    return out


class KernelDocCheck:
    """scripts/kernel-doc on changed .c/.h files, before and after each patch."""

    name = "kernel-doc"
    scope = Scope.PER_PATCH
    tools = ("perl",)
    moves_head = False  # it reads blobs; the worktree stays at the head
    titles = TITLES

    def run(self, ctx: CheckContext) -> CheckResult:
        return run_base_tool(
            ctx,
            self.name,
            "scripts/kernel-doc",
            self._findings,
        )

    def _findings(self, ctx: CheckContext, tools: Path, script: Path) -> list[Finding]:
        touched: dict[int, list[str]] = {}
        base_path: dict[str, str] = {}  # path at HEAD -> path at the base (renames)
        for index, _commit in ctx.commits:
            touched[index] = []
            for f in parse_diff(ctx.patch_diffs.get(index, "")):
                if f.is_c and f.new_path:
                    touched[index].append(f.new_path)
                    base_path.setdefault(
                        f.new_path, base_path.get(f.old_path or "", "") or f.old_path or f.new_path
                    )
        files = sorted({p for paths in touched.values() for p in paths})
        if not files:
            return []
        history: dict[str, list[tuple[int, list[DocWarning]]]] = {f: [] for f in files}
        with tempfile.TemporaryDirectory(prefix="kernel-doc-") as tmp:
            os.chmod(tmp, 0o755)  # the sandbox's uid reads the sources
            steps = [(0, ctx.base, files)] + [
                (i, c, touched[i]) for i, c in ctx.commits if touched.get(i)
            ]
            for index, commit, paths in steps:
                ctx.progress(
                    f"kernel-doc: after patch {index}" if index else "kernel-doc: base", None
                )
                where = {p: base_path.get(p, p) if index == 0 else p for p in paths}
                warns = self._run_version(ctx, tools, script, Path(tmp) / str(index), commit, where)
                for path in paths:
                    history[path].append((index, [w for w in warns if w.file == path]))
        findings = []
        head_lines: dict[str, list[str]] = {}
        for path, versions in history.items():
            for index, w in new_warnings(versions):
                if path not in head_lines:
                    src = ctx.worktree / path
                    head_lines[path] = (
                        src.read_text(errors="replace").splitlines() if src.is_file() else []
                    )
                lines = head_lines[path]
                findings.append(
                    Finding(
                        check="kernel-doc",
                        kind="kernel-doc",
                        severity="warning",
                        patch=index,
                        title=TITLES["kernel-doc"],
                        file=path,
                        line=w.line,
                        message=w.message,
                        excerpt=excerpt(lines, w.line) if 0 < w.line <= len(lines) else "",
                        source_line=lines[w.line - 1].strip() if 0 < w.line <= len(lines) else "",
                        reproduce=(f"./scripts/kernel-doc -none -Wall {path}",),
                    )
                )
        return findings

    @staticmethod
    def _run_version(
        ctx: CheckContext,
        tools: Path,
        script: Path,
        root: Path,
        commit: str,
        paths: dict[str, str],
    ) -> list[DocWarning]:
        """Warnings for `paths` (name to report -> name at `commit`) as of `commit`."""
        blobs = ctx.git.read_blobs(f"{commit}:{p}" for p in paths.values())
        present = []
        for p, at in paths.items():
            data = blobs.get(f"{commit}:{at}")
            if data is None:
                continue
            dest = root / p
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            present.append(p)
        if not present:
            return []
        r = run_tool(
            ctx,
            tools,
            ["perl", str(script), "-none", "-Wall", *present],
            cwd=root,
            timeout=300,
            name="kernel-doc",
        )
        return parse_warnings(r.stderr + "\n" + r.stdout)
