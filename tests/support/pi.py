"""Test helpers around a real public-inbox server on loopback (see bot/demo/inbox.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.demo.inbox import PublicInboxServer, free_port, have_public_inbox, mboxrd
from config.settings import Settings, load_settings

__all__ = [
    "PublicInboxServer",
    "free_port",
    "have_public_inbox",
    "intake_settings",
    "mboxrd",
    "running_server",
    "write_config",
]


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
