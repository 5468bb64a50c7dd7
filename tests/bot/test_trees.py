"""Trees: tarball import (Debian's .gitignore fixed), sync of a git URL, via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.trees.tarimport import strip_debian_gitignore
from tests.support.gitrepo import SmallRepo, git

DEBIAN_TAIL = (
    "\n# Rust analyzer configuration\n/rust-project.json\n\n#\n"
    "# Debian packaging: ignore everything at the top level, since it isn't\n"
    "# included in our repository\n#\n/*\n!/debian/\n"
)


def test_strip_debian_gitignore_keeps_the_upstream_rules() -> None:
    text = "*.o\n/vmlinux\n" + DEBIAN_TAIL
    assert (
        strip_debian_gitignore(text) == "*.o\n/vmlinux\n\n# Rust analyzer configuration\n"
        "/rust-project.json\n"
    )
    assert strip_debian_gitignore("*.o\n") == "*.o\n"


def make_tarball(tmp_path: Path) -> Path:
    src = tmp_path / "linux-source-9.9"
    (src / "mm").mkdir(parents=True)
    (src / "mm" / "a.c").write_text("int a;\n")
    (src / "scripts").mkdir()
    (src / "scripts" / "config").write_text("#!/bin/sh\n")
    os.chmod(src / "scripts" / "config", 0o755)
    os.symlink("../mm/a.c", src / "scripts" / "link.c")
    (src / ".gitignore").write_text("*.o\n" + DEBIAN_TAIL)
    tarball = tmp_path / "linux-source-9.9.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        tar.add(src, arcname="linux-source-9.9")
    return tarball


def write_config(tmp_path: Path, trees: str) -> Path:
    cfg = tmp_path / "l.toml"
    cfg.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{tmp_path / "cache"}"\n' + trees
    )
    return cfg


def test_tree_import_cli_makes_one_commit_with_modes_and_symlinks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, "")
    tarball = make_tarball(tmp_path)
    assert (
        main(
            [
                "--config",
                str(cfg),
                "tree",
                "import",
                "linux",
                str(tarball),
                "--branch",
                "v9.9",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["tree"] == "linux" and out["branch"] == "v9.9" and out["files"] == 4
    gd = tmp_path / "cache" / "git" / "kernel.git"
    sha = subprocess.run(
        ["git", "--git-dir", str(gd), "rev-parse", "refs/trees/linux/v9.9"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert sha == out["sha"]
    ls = subprocess.run(
        ["git", "--git-dir", str(gd), "ls-tree", "-r", sha],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "100755 blob" in ls.split("scripts/config")[0].splitlines()[-1]
    assert any(ln.startswith("120000") and ln.endswith("scripts/link.c") for ln in ls.splitlines())
    gitignore = subprocess.run(
        ["git", "--git-dir", str(gd), "show", f"{sha}:.gitignore"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "/*" not in gitignore.splitlines() and "*.o" in gitignore
    # the same tarball imports to the same commit (dated by the tarball)
    assert (
        main(
            [
                "--config",
                str(cfg),
                "tree",
                "import",
                "linux",
                str(tarball),
                "--branch",
                "again",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["sha"] == sha


def test_tree_import_of_a_missing_tarball_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, "")
    assert main(["--config", str(cfg), "tree", "import", "linux", str(tmp_path / "no.tar")]) == 1
    assert "tarball not found" in capsys.readouterr().err


def test_tree_sync_cli_fetches_branches_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = SmallRepo(tmp_path / "up")
    cfg = write_config(
        tmp_path, f'[[trees]]\nname = "small"\nurl = "{up.path}"\nbranches = ["master"]\n'
    )
    assert main(["--config", str(cfg), "tree", "sync", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"small": {"master": up.head()}}
    # a rebased (rewritten) branch is followed, not refused
    git(up.path, "commit", "--amend", "-qm", "rewritten")
    assert main(["--config", str(cfg), "tree", "sync", "small", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["small"]["master"] == up.head()
    assert main(["--config", str(cfg), "tree", "sync", "nope"]) == 2
