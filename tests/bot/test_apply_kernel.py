"""The whole apply path on the real kernel: a series posted to public-inbox, `lorebot apply`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.demo.series import DEMO_PATCHES, write_series
from tests.support import kernel
from tests.support.pi import PublicInboxServer

pytestmark = pytest.mark.kernel


def config(tmp_path: Path, pi_server: PublicInboxServer) -> Path:
    path = tmp_path / "lorebot.toml"
    path.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{kernel.test_cache()}"\n\n'
        f'[[lists]]\nname = "{pi_server.name}"\nurl = "{pi_server.url}"\n'
        f'address = "{pi_server.address}"\ntrees = ["linux"]\n\n'
        '[[trees]]\nname = "linux"\nurl = ""\nbranches = ["master"]\n'
    )
    return path


def run_apply(cfg: Path, target: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    rc = main(["--config", str(cfg), "apply", target, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def test_kernel_series_applies_through_lore(
    kernel_git_dir: Path,
    pi_server: PublicInboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    writer = kernel.kernel_slot("writer")
    mailed = write_series(writer, DEMO_PATCHES, list_address=pi_server.address)
    pi_server.post_many(mailed.mails)
    rc, out = run_apply(config(tmp_path, pi_server), f"{pi_server.url}/{mailed.msgids[0]}/", capsys)
    assert rc == 0, out["message"]
    assert out["ok"] and out["tree"] == "linux" and out["branch"] == "master"
    assert out["base"] == mailed.base
    assert out["tried"][0]["how"] == "base-commit" and out["tried"][0]["ok"]
    assert [p["index"] for p in out["patches"]] == [1, 2, 3]
    assert all(p["commit"] for p in out["patches"])
    assert [p["subject"].split("] ", 1)[1] for p in out["patches"]] == [
        p.subject for p in DEMO_PATCHES
    ]
    slot = Path(out["worktree"])
    assert "folio_migrate_flags(new, old);" in (slot / "mm/filemap.c").read_text()


def test_kernel_series_with_stale_context_names_patch_and_hunk(
    kernel_git_dir: Path,
    pi_server: PublicInboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    writer = kernel.kernel_slot("writer")
    mailed = write_series(writer, DEMO_PATCHES, list_address=pi_server.address)
    # patch 2 was written against a tree where this context line differs
    mails = list(mailed.mails)
    mails[2] = mails[2].replace(b" \tnew->index = offset;", b" \tnew->index = offset + 1;")
    pi_server.post_many(mails)
    rc, out = run_apply(config(tmp_path, pi_server), mailed.msgids[1], capsys)
    assert rc == 1 and not out["ok"]
    assert out["failed_patch"] == 2
    assert out["failed_file"] == "mm/filemap.c"
    assert "new->index = offset + 1;" in out["failed_hunk"]
    assert mailed.msgids[2] in out["message"] and "keep folio flags" in out["message"]
    assert out["patches"][0]["commit"] and out["patches"][1]["commit"] is None
    assert out["patches"][2]["commit"] is None
    # b4's blob guess points back at the same base: recorded, not applied twice
    assert [t["how"] for t in out["tried"]] == ["base-commit", "b4-guess"]
    assert out["tried"][1]["sha"] == mailed.base and "already tried" in out["tried"][1]["reason"]
