"""Kernel trees: one bare repository holding every configured tree, and worktree slots.

All trees live in one bare repository under `<cache>/git/kernel.git`, each
branch as `refs/trees/<tree>/<branch>`, so objects are shared and any slot can
check out any tree's base. A slot is a worktree with a stable path
(`<cache>/slots/<n>`), reused across runs: a kernel `O=` build dir remembers
the source path it was made from, and a new kernel worktree costs ~12 s.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.core.git import Git, low_speed
from bot.core.runner import CommandError, Runner
from bot.trees.tarimport import import_tarball
from config.settings import NetworkSettings, Settings, TreeSettings

log = logging.getLogger("lorebot.trees")


class TreeError(Exception):
    """A tree cannot be synced, imported or checked out; the message says why."""


def tree_ref(tree: str, branch: str) -> str:
    return f"refs/trees/{tree}/{branch}"


@dataclass
class Repo:
    """The bare repository of all trees."""

    git_dir: Path
    runner: Runner

    @property
    def g(self) -> Git:
        return Git(self.runner, git_dir=self.git_dir)

    @classmethod
    def open(cls, settings: Settings, runner: Runner | None = None) -> Repo:
        repo = cls(settings.paths.cache / "git" / "kernel.git", runner or Runner())
        repo.ensure()
        return repo

    def git(
        self,
        *args: str,
        check: bool = True,
        timeout: float | None = 600,
        name: str = "git",
    ) -> str:
        r = self.g.run(*args, timeout=timeout, name=name)
        if check and not r.ok:
            raise TreeError(f"git {' '.join(args[:3])} failed: {r.output.strip()[-1500:]}")
        return r.stdout

    def ensure(self) -> None:
        if (self.git_dir / "HEAD").exists():
            return
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        self.g.run("init", "-q", "--bare", check=True, name="init")
        # one big import is repacked once by hand; automatic gc of ~90k loose
        # objects would stall a run
        self.git("config", "gc.auto", "0")

    def resolve(self, rev: str) -> str | None:
        """The commit sha of `rev`, or None if the repository does not have it."""
        r = self.g.run(
            "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", timeout=60, name="rev-parse"
        )
        return r.stdout.strip() if r.ok and r.stdout.strip() else None

    def branch_sha(self, tree: str, branch: str) -> str | None:
        return self.resolve(tree_ref(tree, branch))

    def trees_containing(self, sha: str) -> list[tuple[str, str]]:
        """(tree, branch) pairs whose branch contains commit `sha`."""
        out = self.git(
            "for-each-ref", "--contains", sha, "--format=%(refname)", "refs/trees/", check=False
        )
        pairs = []
        for ref in out.split():
            parts = ref.removeprefix("refs/trees/").split("/", 1)
            if len(parts) == 2:
                pairs.append((parts[0], parts[1]))
        return pairs

    def branches(self, tree: str) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname)", f"refs/trees/{tree}/", check=False)
        return [r.removeprefix(f"refs/trees/{tree}/") for r in out.split()]

    def sync(self, tree: TreeSettings, network: NetworkSettings | None = None) -> dict[str, str]:
        """Fetch the tree's branches (forced: rebased branches are normal); branch -> sha.

        Bounded by `network`: the low-speed limit and the whole fetch's timeout.
        """
        if not tree.url:
            raise TreeError(f"tree '{tree.name}' has no url; it can only be imported")
        net = network or NetworkSettings()
        specs = [f"+refs/heads/{b}:{tree_ref(tree.name, b)}" for b in tree.branches]
        self.git(
            *low_speed(net.low_speed_limit, net.low_speed_time),
            "fetch",
            "--no-tags",
            "--prune",
            "-q",
            tree.url,
            *specs,
            timeout=net.fetch_timeout,
            name=f"fetch-{tree.name}",
        )
        return {b: self.branch_sha(tree.name, b) or "" for b in tree.branches}

    def import_tarball(
        self, tree: str, tarball: Path, branch: str = "master"
    ) -> tuple[str, int, float]:
        """Make `tarball` one commit on tree/branch; (sha, files, seconds)."""
        if not tarball.is_file():
            raise TreeError(f"tarball not found: {tarball}")
        return import_tarball(
            self.git_dir,
            tarball,
            tree_ref(tree, branch),
            f"Import {tarball.name}\n\nImported by lorebot tree import.",
            self.runner,
        )


class Slot:
    """A worktree with a stable path, locked by one run at a time."""

    def __init__(self, repo: Repo, path: Path):
        self.repo = repo
        self.path = path
        self.g = Git(repo.runner, worktree=path)

    def _wt(
        self, *args: str, check: bool = True, timeout: float | None = 600, name: str = "git"
    ) -> str:
        r = self.g.run(*args, timeout=timeout, name=name)
        if check and not r.ok:
            raise TreeError(
                f"git {' '.join(args[:3])} in {self.path.name}: {r.output.strip()[-1500:]}"
            )
        return r.stdout

    def reset(self, sha: str) -> None:
        """Check out `sha` clean: an interrupted `git am` or a crash leaves no trace."""
        if not (self.path / ".git").exists():
            if self.path.exists():
                raise TreeError(f"slot {self.path} exists but is not a worktree; remove it")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repo.git("worktree", "prune")
            self.repo.git(
                "worktree",
                "add",
                "-q",
                "--detach",
                str(self.path),
                sha,
                timeout=1800,
                name="worktree-add",
            )
            return
        self._wt("am", "--abort", check=False, name="am-abort")
        self._wt("checkout", "-q", "--detach", "-f", sha, name="checkout")
        self._wt("reset", "-q", "--hard", sha, name="reset")
        self._wt("clean", "-qfdx", name="clean")

    def head(self) -> str:
        return self._wt("rev-parse", "HEAD").strip()

    def run_git(
        self,
        *args: str,
        check: bool = False,
        timeout: float | None = 600,
        name: str = "git",
        input: bytes | None = None,
    ) -> tuple[bool, str]:
        r = self.g.run(*args, timeout=timeout, name=name, input=input)
        if check and not r.ok:
            raise CommandError(r, name)
        return r.ok, r.output


@contextmanager
def acquire_slot(repo: Repo, cache: Path, slots: int) -> Iterator[Slot]:
    """Take a free slot (file lock per slot), waiting when all are busy."""
    base = cache / "slots"
    base.mkdir(parents=True, exist_ok=True)
    while True:
        for n in range(slots):
            lock = open(base / f"{n}.lock", "w")  # noqa: SIM115 - held for the run
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            try:
                lock.write(str(os.getpid()))
                lock.flush()
                yield Slot(repo, base / str(n))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
                lock.close()
            return
        # all busy: block on the first one rather than spin
        with open(base / "0.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fcntl.flock(lock, fcntl.LOCK_UN)
