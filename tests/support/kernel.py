"""Test helpers around the real kernel tree (Debian linux-source-6.12).

The tree is imported once per machine into a cache directory
(`LOREBOT_TEST_CACHE`, default ~/.cache/lorebot-test) and reused; tests get a
worktree slot with a stable path, reset to the imported base.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.core.models import AppliedPatch, ApplyResult, PatchMail, Series
from bot.core.runner import Runner
from bot.trees.tarimport import import_tarball
from checks.base import CheckContext, sandbox_for
from config.settings import Settings

TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
REF = "refs/trees/linux/master"


def test_cache() -> Path:
    return Path(os.environ.get("LOREBOT_TEST_CACHE", "~/.cache/lorebot-test")).expanduser()


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, text=True, check=True
    ).stdout


def kernel_git_dir() -> Path:
    """The bare repository holding the imported tarball (imported on first use)."""
    git_dir = test_cache() / "git" / "kernel.git"
    if git_dir.exists():
        probe = subprocess.run(
            ["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "-q", REF],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return git_dir
    git_dir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    subprocess.run(["git", "--git-dir", str(git_dir), "config", "gc.auto", "0"], check=True)
    import_tarball(git_dir, TARBALL, REF, "Import linux-source-6.12")
    return git_dir


def kernel_slot(name: str) -> Path:
    """A worktree with a stable path (one per test module), clean at the imported base."""
    git_dir = kernel_git_dir()
    path = test_cache() / "slots" / name
    if not (path / ".git").exists():
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        subprocess.run(["git", "--git-dir", str(git_dir), "worktree", "prune"], check=True)
        subprocess.run(
            ["git", "--git-dir", str(git_dir), "worktree", "add", "-q", "--detach", str(path), REF],
            check=True,
        )
    git(path, "reset", "-q", "--hard", REF)
    git(path, "clean", "-qfdx")
    return path


Edit = Callable[[Path], None]


def replace_in(path: str, old: str, new: str, count: int = 1) -> Edit:
    """An edit that replaces `old` by `new` in one file of the worktree (must match)."""

    def edit(wt: Path) -> None:
        f = wt / path
        text = f.read_text()
        if old not in text:
            raise AssertionError(f"{path}: text to replace not found: {old[:80]!r}")
        f.write_text(text.replace(old, new, count))

    return edit


@dataclass
class WrittenPatch:
    subject: str
    edits: list[Edit]


def commit_series(
    wt: Path, patches: list[WrittenPatch], author: str = "Dev Eloper <dev@example.org>"
) -> list[tuple[str, str]]:
    """Commit each patch on top of HEAD; returns [(sha, format-patch mail)]."""
    out = []
    for p in patches:
        for e in p.edits:
            e(wt)
        git(wt, "add", "-A")
        git(
            wt,
            "-c",
            "user.name=Dev Eloper",
            "-c",
            "user.email=dev@example.org",
            "commit",
            "-q",
            "--author",
            author,
            "-m",
            p.subject + "\n\nSigned-off-by: " + author,
        )
        sha = git(wt, "rev-parse", "HEAD").strip()
        mail = git(wt, "format-patch", "--stdout", "-1", sha)
        out.append((sha, mail))
    return out


def series_context(
    wt: Path,
    patches: list[WrittenPatch],
    settings: Settings,
    tmp: Path,
    cache_dir: Path | None = None,
) -> CheckContext:
    """Apply `patches` as commits in `wt` and build the CheckContext a check receives."""
    base = git(wt, "rev-parse", "HEAD").strip()
    committed = commit_series(wt, patches)
    n = len(committed)
    mails = []
    applied = []
    diffs = {}
    for i, ((sha, mail), p) in enumerate(zip(committed, patches, strict=True), start=1):
        msgid = f"patch-{i}@example.org"
        subject = f"[PATCH {i}/{n}] {p.subject}" if n > 1 else f"[PATCH] {p.subject}"
        mails.append(
            PatchMail(
                index=i,
                msgid=msgid,
                subject=subject,
                title=p.subject,
                author="Dev Eloper <dev@example.org>",
                author_email="dev@example.org",
                mbox=mail.encode(),
            )
        )
        applied.append(AppliedPatch(index=i, msgid=msgid, subject=subject, commit=sha))
        diffs[i] = git(wt, "show", "--format=", sha)
    series = Series(
        msgid=mails[0].msgid,
        subject=mails[0].subject,
        total=n,
        patches=tuple(mails),
        author="Dev Eloper <dev@example.org>",
        author_email="dev@example.org",
    )
    result = ApplyResult(
        ok=True, tree="linux", branch="master", base=base, worktree=str(wt), patches=tuple(applied)
    )
    log_dir = tmp / "logs"
    runner = Runner(log_dir)
    return CheckContext(
        series=series,
        applied=result,
        worktree=wt,
        settings=settings,
        runner=runner,
        cache_dir=cache_dir or (test_cache() / "build"),
        log_dir=log_dir,
        patch_diffs=diffs,
        sandbox=sandbox_for(settings.sandbox, runner),
    )
