"""A real git server on loopback (`git daemon`) serving bare trees, and commits made in
them without a worktree, so that a kernel-sized tree costs nothing to serve or change.

A served kernel tree borrows the imported linux-source-6.12 objects (alternates):
serving it and adding a commit to it take milliseconds, and a lorebot mirror that
already holds those objects fetches only what is new.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.demo.inbox import free_port
from tests.support.waiting import wait_for

IDENTITY = {
    "GIT_AUTHOR_NAME": "Dev Eloper",
    "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Dev Eloper",
    "GIT_COMMITTER_EMAIL": "dev@example.org",
}


def bare_git(
    git_dir: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        input=input,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **IDENTITY, **(env or {})},
    ).stdout


def borrowed_tree(git_dir: Path, objects_from: Path, branch: str, rev: str) -> Path:
    """A bare repo whose `branch` is `rev` of `objects_from` (shared by alternates)."""
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    (git_dir / "objects" / "info" / "alternates").write_text(str(objects_from / "objects") + "\n")
    sha = bare_git(objects_from, "rev-parse", rev).strip()
    bare_git(git_dir, "update-ref", f"refs/heads/{branch}", sha)
    return git_dir


def commit_files(git_dir: Path, parent: str, files: dict[str, str], message: str) -> str:
    """A commit on top of `parent` that writes `files` (path -> text); its sha (no ref)."""
    with tempfile.TemporaryDirectory(prefix="lorebot-idx-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        bare_git(git_dir, "read-tree", parent, env=env)
        for path, text in files.items():
            blob = bare_git(git_dir, "hash-object", "-w", "--stdin", input=text).strip()
            bare_git(
                git_dir, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env
            )
        tree = bare_git(git_dir, "write-tree", env=env).strip()
    return bare_git(git_dir, "commit-tree", tree, "-p", parent, "-m", message).strip()


def edit_file(git_dir: Path, rev: str, path: str, old: str, new: str) -> dict[str, str]:
    """{path: the file at `rev` with `old` replaced by `new`} (which must be there)."""
    text = bare_git(git_dir, "show", f"{rev}:{path}")
    assert old in text, (path, old)
    return {path: text.replace(old, new, 1)}


def format_patches(git_dir: Path, base: str, tip: str, base_commit: bool = True) -> list[bytes]:
    """The mails of base..tip, threaded, with `base-commit:` unless told not to."""
    out = bare_git(
        git_dir,
        "format-patch",
        "--stdout",
        "--thread",
        *(["--base", base] if base_commit else []),
        f"{base}..{tip}",
    )
    chunks = out.split("\nFrom ")
    return [m.encode() for m in [chunks[0]] + ["From " + c for c in chunks[1:]]]


class GitDaemon:
    """`git daemon` on 127.0.0.1 serving every repository under `root`; stop and start
    again on the same port (a server outage)."""

    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "daemon.log"

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                f"--base-path={self.root}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.root),
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._listening, 20, f"git daemon on port {self.port}", interval=0.05)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=20)
            self.proc = None
            # the port is free again once nothing listens on it
            wait_for(lambda: not self._listening(), 20, "git daemon to stop", interval=0.05)


@contextmanager
def git_daemon(root: Path) -> Iterator[GitDaemon]:
    daemon = GitDaemon(root)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def commit_edit(git_dir: Path, parent: str, path: str, old: str, new: str, message: str) -> str:
    """A commit on top of `parent` replacing `old` by `new` in one file; its sha."""
    return commit_files(git_dir, parent, edit_file(git_dir, parent, path, old, new), message)
