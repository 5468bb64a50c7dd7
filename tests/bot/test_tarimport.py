"""A tarball becomes one commit through the runner's streamed fast-import."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from bot.core.runner import Runner
from bot.trees.tarimport import import_tarball
from tests.support.kernel import git


def test_a_tarball_is_one_commit_with_its_files_and_links(tmp_path: Path) -> None:
    tarball = tmp_path / "linux-source-9.9.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in (
            ("linux-source-9.9/Makefile", b"all:\n"),
            ("linux-source-9.9/a/b.c", b"int b;\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("linux-source-9.9/a/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "b.c"
        tar.addfile(link)
    bare = tmp_path / "repo.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    logs = tmp_path / "logs"
    sha, files, _ = import_tarball(bare, tarball, "refs/heads/master", "Import", Runner(logs))
    assert files == 3
    listing = git(bare, "ls-tree", "-r", sha)
    assert "100644 blob" in listing and "a/b.c" in listing and "120000 blob" in listing
    assert any("fast-import" in p.name for p in logs.iterdir())  # through the runner's log
