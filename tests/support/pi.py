"""Test helpers around a real public-inbox server on loopback (see bot/demo/inbox.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo.inbox import PublicInboxServer as DemoInbox
from bot.demo.inbox import free_port, have_public_inbox, mboxrd
from config.settings import Settings, load_settings

__all__ = [
    "PublicInboxServer",
    "free_port",
    "have_public_inbox",
    "intake_settings",
    "mboxrd",
    "running_server",
    "small_tree_config",
    "write_config",
]


class PublicInboxServer(DemoInbox):
    """The demo's inbox server, with what only tests do to an inbox: store raw commits
    public-inbox itself would refuse, and rewrite history as a purge does."""

    def post_raw_commit(self, raw: bytes) -> str:
        """Append `raw` to epoch 0 as a lore-style commit (tree = just `m`), not indexed.

        Lets tests store what public-inbox itself would refuse or repair (no Message-ID).
        """
        git = ["git", "--git-dir", str(self.epoch0)]
        blob = self.runner.run(
            [*git, "hash-object", "-w", "--stdin"], input=raw, check=True
        ).stdout.strip()
        tree = self.runner.run(
            [*git, "mktree"], input=f"100644 blob {blob}\tm\n", check=True
        ).stdout.strip()
        head = self.head()
        parent = ["-p", head] if head else []
        commit = self.runner.run(
            [*git, "commit-tree", tree, *parent, "-m", "raw"], check=True
        ).stdout.strip()
        self.runner.run([*git, "update-ref", "refs/heads/master", commit], check=True)
        return commit

    def rewrite_drop(self, commit: str) -> None:
        """Rewrite epoch 0's history without `commit` (what a purge does)."""
        git = ["git", "--git-dir", str(self.epoch0)]
        revs = self.runner.run([*git, "rev-list", "--reverse", "master"], check=True).stdout.split()
        tip = ""
        for rev in revs:
            if rev == commit:
                continue
            tree = self.runner.run(
                [*git, "rev-parse", f"{rev}^{{tree}}"], check=True
            ).stdout.strip()
            parent = ["-p", tip] if tip else []
            tip = self.runner.run(
                [*git, "commit-tree", tree, *parent, "-m", "rewritten"], check=True
            ).stdout.strip()
        self.runner.run([*git, "update-ref", "refs/heads/master", tip], check=True)


def running_server(tmp_path: Path) -> Iterator[PublicInboxServer]:
    """A running, empty public-inbox server (skipped when public-inbox is missing).

    The body of the `pi_server` fixture (tests/bot/conftest.py).
    """
    if not have_public_inbox():
        pytest.skip("public-inbox is not installed (apt-get install public-inbox)")
    server = PublicInboxServer(tmp_path / "pi")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def intake_settings(tmp_path: Path, server: PublicInboxServer, **intake: object) -> Settings:
    """Settings with one list (the server's inbox), state and cache under tmp_path."""
    return load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[{"name": server.name, "url": server.url, "address": server.address}],
        trees=[],
        intake=intake,
    )


def write_config(path: Path, tmp_path: Path, server: PublicInboxServer, **intake: object) -> Path:
    """A TOML config file for CLI tests."""
    lines = [
        "[paths]",
        f'state = "{tmp_path / "state"}"',
        f'cache = "{tmp_path / "cache"}"',
        "",
        "[[lists]]",
        f'name = "{server.name}"',
        f'url = "{server.url}"',
        f'address = "{server.address}"',
        "",
        "[intake]",
    ]
    lines += [f"{k} = {v!r}" for k, v in intake.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def small_tree_config(
    tmp_path: Path, server: PublicInboxServer, upstream: Path, extra: str = ""
) -> Path:
    """lorebot.toml for a list on `server` whose series go on the git tree `upstream`
    (tree "small", branch master), state and cache under tmp_path; `extra` is more TOML."""
    path = tmp_path / "lorebot.toml"
    path.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{tmp_path / "cache"}"\n\n'
        f'[[lists]]\nname = "{server.name}"\nurl = "{server.url}"\n'
        f'address = "{server.address}"\ntrees = ["small"]\n\n'
        f'[[trees]]\nname = "small"\nurl = "{upstream}"\nbranches = ["master"]\n\n' + extra
    )
    return path
