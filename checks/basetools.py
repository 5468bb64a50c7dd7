"""The tools that judge a patch, as the tested base has them, run in the sandbox.

checkpatch.pl and kernel-doc live in the tree a series may change. The patched
copies are the series' own code and never judge it: the base's `scripts/`
directory (a configured tree's commit, also for a follow-up) is exported once
per commit into the cache, read-only, and the tools run from there. A series
that changes one of them is checked by the base's copy, and a Note says so.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bot.core.diff import parse_diff
from bot.core.results import CheckResult, CheckStatus, Finding, Note
from bot.core.runner import CommandResult
from checks.base import CheckContext


def base_scripts(ctx: CheckContext) -> Path:
    """`<cache>/tools/<commit>`: holds the base commit's scripts/ (exported once)."""
    commit = ctx.tools_base
    dest = ctx.cache_dir / "tools" / commit
    if (dest / ".complete").exists():
        return dest
    r = ctx.git.run("archive", "--format=tar", commit, "scripts", check=True, name="archive")
    tmp = dest.with_name(dest.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(r.stdout_bytes)) as tar:
        tar.extractall(tmp, filter="data")  # no links out, no absolute paths
    (tmp / ".complete").write_text(commit + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def run_base_tool(
    ctx: CheckContext,
    check: str,
    tool: str,
    judge: Callable[[CheckContext, Path, Path], list[Finding]],
) -> CheckResult:
    """`judge(ctx, tools, script)` with the base's `tool` (a path like scripts/kernel-doc):
    SKIPPED with a Note when the base has none, a Note when the series changes it."""
    tools = base_scripts(ctx)
    script = tools / tool
    if not script.is_file():
        missing = Note(
            check=check, kind="tool-missing", message=f"{tool} is not in the base; {check} not run"
        )
        return CheckResult(status=CheckStatus.SKIPPED, notes=(missing,))
    changed = changed_by_series(ctx, check, tool)
    return CheckResult.of(judge(ctx, tools, script), [changed] if changed else [])


def changed_by_series(ctx: CheckContext, check: str, tool: str) -> Note | None:
    """A Note of `check` when a patch of the series changes `tool` (the base's copy ran)."""
    for index, diff in sorted(ctx.patch_diffs.items()):
        if any(tool in (f.old_path, f.new_path) for f in parse_diff(diff)):
            name = Path(tool).name
            return Note(
                check=check,
                kind="tool-changed",
                message=f"patch {index} changes {tool}; the series was checked with the "
                f"base's {name}, not the patched one",
            )
    return None


def run_tool(
    ctx: CheckContext,
    tools: Path,
    argv: Sequence[str],
    *,
    cwd: Path,
    inputs: Iterable[Path] = (),
    timeout: float,
    name: str,
) -> CommandResult:
    """A base tool in the sandbox: the tools and `inputs` read-only, nothing writable."""
    return ctx.sandbox.run(
        ctx.runner,
        argv,
        cwd=cwd,
        ro=[tools, *dict.fromkeys([cwd, *inputs])],
        timeout=timeout,
        name=name,
    )
