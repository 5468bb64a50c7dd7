"""The one git helper: every git command lorebot runs, with the same safe options.

git must never run repository hooks, read the user's or the system's config,
or ask for a password; commits lorebot makes (`git am`) carry one fixed
identity. Blobs are read in one `git cat-file --batch` as bytes (kernel
sources are not all UTF-8: the parser must see what the compiler sees).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from bot.core.runner import CommandError, CommandResult, Runner

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "lorebot",
    "GIT_AUTHOR_EMAIL": "lorebot@localhost",
    "GIT_COMMITTER_NAME": "lorebot",
    "GIT_COMMITTER_EMAIL": "lorebot@localhost",
}
GIT_SAFE = ("-c", "core.hooksPath=/dev/null")


def low_speed(limit: int, seconds: int) -> tuple[str, ...]:
    """Options before a network command: abort a transfer slower than `limit` bytes/s for
    `seconds` (a server that accepts and never answers included)."""
    return ("-c", f"http.lowSpeedLimit={limit}", "-c", f"http.lowSpeedTime={seconds}")


class Git:
    """git in one repository: a worktree (`-C`), a bare git dir (`--git-dir`), or none
    (`ls-remote`, `init`)."""

    def __init__(
        self, runner: Runner, *, worktree: Path | None = None, git_dir: Path | None = None
    ):
        if worktree is not None and git_dir is not None:
            raise ValueError("Git takes a worktree or a git_dir, not both")
        self.runner = runner
        self.where = (
            ["-C", str(worktree)]
            if worktree is not None
            else ["--git-dir", str(git_dir)]
            if git_dir is not None
            else []
        )

    def argv(self, *args: str) -> list[str]:
        return ["git", *GIT_SAFE, *self.where, *args]

    def run(
        self,
        *args: str,
        check: bool = False,
        timeout: float | None = 600,
        name: str = "git",
        input: str | bytes | None = None,
    ) -> CommandResult:
        """Run one git command; with `check`, a failure raises CommandError."""
        return self.runner.run(
            self.argv(*args), env=GIT_ENV, timeout=timeout, name=name, input=input, check=check
        )

    def out(self, *args: str, timeout: float | None = 600, name: str = "git") -> str:
        """The stdout of a git command that must succeed, stripped."""
        return self.run(*args, check=True, timeout=timeout, name=name).stdout.strip()

    def read_blobs(
        self, specs: Iterable[str], timeout: float | None = 600
    ) -> dict[str, bytes | None]:
        """Contents of `rev:path` (or object id) specs in one `cat-file --batch`, as bytes;
        None where the object does not exist."""
        wanted = list(dict.fromkeys(specs))
        if not wanted:
            return {}
        r = self._cat_file("--batch", wanted, timeout)
        return parse_batch(r.stdout_bytes, wanted)

    def _cat_file(self, mode: str, wanted: list[str], timeout: float | None) -> CommandResult:
        """One `git cat-file <mode>` over `wanted` (one spec a line); it must succeed."""
        if any("\n" in s for s in wanted):
            raise ValueError("a blob spec cannot contain a newline")
        r = self.run(
            "cat-file",
            mode,
            input="".join(f"{s}\n" for s in wanted),
            timeout=timeout,
            name="cat-file",
        )
        if not r.ok:
            raise CommandError(r, f"git cat-file {mode}")
        return r

    def object_sizes(self, specs: Iterable[str], timeout: float | None = 600) -> dict[str, int]:
        """Size in bytes of each `rev:path` (or object id) that exists, without reading it."""
        wanted = list(dict.fromkeys(specs))
        if not wanted:
            return {}
        r = self._cat_file("--batch-check=%(objectsize)", wanted, timeout)
        sizes = {}
        for spec, line in zip(wanted, r.stdout.splitlines(), strict=False):
            if line.strip().isdigit():  # else "<spec> missing"
                sizes[spec] = int(line)
        return sizes

    def read_head(self, spec: str, limit: int, timeout: float | None = 600) -> bytes:
        """The first `limit` bytes of a blob, the rest never read."""
        r = self.runner.run(
            self.argv("cat-file", "blob", spec),
            env=GIT_ENV,
            timeout=timeout,
            name="cat-file-head",
            max_stdout=limit,
        )
        if not r.ok:
            raise CommandError(r, "git cat-file blob")
        return r.stdout_bytes


def parse_batch(data: bytes, specs: list[str]) -> dict[str, bytes | None]:
    """`git cat-file --batch` output for `specs`, in order (pure)."""
    out: dict[str, bytes | None] = {}
    pos = 0
    for spec in specs:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[1] in (b"blob", b"commit", b"tree", b"tag"):
            size = int(header[2])
            out[spec] = data[pos : pos + size]
            pos += size + 1  # the content, then a newline
        else:  # "<spec> missing" or "ambiguous"
            out[spec] = None
    return out


def blob_id(data: bytes) -> str:
    """The object id git gives these bytes as a blob (SHA-1 repositories)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
