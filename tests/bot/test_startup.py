"""Start-up faults stop lorebot with one line naming the key or path, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def lorebot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("LOREBOT_") or k.endswith("CACHE")
    }
    base.update(
        LOREBOT_PATHS__STATE=str(tmp_path / "state"),
        LOREBOT_PATHS__CACHE=str(tmp_path / "cache"),
        LOREBOT_LISTS="[]",
        LOREBOT_TREES="[]",
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line(r: subprocess.CompletedProcess[str], *named: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lorebot: "), r.stderr
    for word in named:
        assert word in lines[0]


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A small tmpfs (root only; skipped where mounting is not allowed)."""
    where.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_config_naming_a_directory(tmp_path: Path) -> None:
    r = lorebot(tmp_path, "--config", str(tmp_path), "poll", "--once")
    assert_one_line(r, str(tmp_path), "--config")


def test_lists_not_json(tmp_path: Path) -> None:
    assert_one_line(lorebot(tmp_path, "poll", "--once", LOREBOT_LISTS="notjson"), "LOREBOT_LISTS")


def test_listen_with_a_port_fails_at_start(tmp_path: Path) -> None:
    r = lorebot(tmp_path, "serve", LOREBOT_WEB__LISTEN="127.0.0.1:18182")
    assert_one_line(r, "web.listen", "web.port")


def test_listen_on_an_address_not_here_fails_at_start(tmp_path: Path) -> None:
    # TEST-NET-1: an address no machine of ours has
    r = lorebot(tmp_path, "serve", LOREBOT_WEB__LISTEN="192.0.2.1")
    assert_one_line(r, "web.listen", "192.0.2.1")


def test_state_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    r = lorebot(tmp_path, "poll", "--once", LOREBOT_PATHS__STATE=str(tmp_path / "file" / "s"))
    assert_one_line(r, "paths.state", "LOREBOT_PATHS__STATE")


def test_read_only_state(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "size=1m,ro") as ro:
        r = lorebot(tmp_path, "poll", "--once", LOREBOT_PATHS__STATE=str(ro / "state"))
    assert_one_line(r, "paths.state", "Read-only")


def test_full_state(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full", "size=32k") as full:
        r = lorebot(tmp_path, "poll", "--once", LOREBOT_PATHS__STATE=str(full))
    assert_one_line(r, "paths.state", "No space left")
