"""A hostile series on linux-source-6.12 through `lorebot check`: nothing it runs reaches
the host.

Patch 1 changes mm/Makefile to touch a file on the host, dump the environment it
sees and its uid; patches 2 and 3 make scripts/checkpatch.pl and scripts/kernel-doc
touch files on the host. After `lorebot check` none of those files exist, the
build saw no LOREBOT_* value, and the run completed with its results recorded.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.demo.series import DemoPatch, Edit, write_series
from tests.support import kernel
from tests.support.pi import PublicInboxServer

pytestmark = pytest.mark.kernel

MM_LINE = "# Makefile for the linux memory manager.\n"
FILEMAP = "/**\n * filemap_fdatawrite_wbc - "


def perl_touch(path: str, marker: Path) -> Edit:
    return Edit(path, "use strict;\n", f'use strict;\nsystem("touch {marker}");\n')


def test_a_hostile_series_runs_nothing_on_the_host(
    kernel_git_dir: Path,
    pi_server: PublicInboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOREBOT_SMTP_PASSWORD", "hunter2-not-for-builds")
    host = tmp_path / "host"
    host.mkdir()
    host.chmod(0o777)  # anyone may write here: only the sandbox keeps the series out
    seen = f"seen-env-{uuid.uuid4().hex}"
    patches = (
        DemoPatch(
            "mm: a few more build rules",
            "Build the memory manager with a bit more help.",
            (
                Edit(
                    "mm/Makefile",
                    MM_LINE,
                    MM_LINE + f"$(shell touch {host}/marker-make; env > $(objtree)/{seen}; "
                    f"id -u >> $(objtree)/{seen})\n",
                ),
                Edit("mm/filemap.c", FILEMAP, "/**\n * filemap_fdatawrite_wbc() - "),
            ),
        ),
        DemoPatch(
            "checkpatch: be more helpful",
            "Run a helper first.",
            (perl_touch("scripts/checkpatch.pl", host / "marker-checkpatch"),),
        ),
        DemoPatch(
            "kernel-doc: be more helpful",
            "Run a helper first.",
            (perl_touch("scripts/kernel-doc", host / "marker-kernel-doc"),),
        ),
    )
    writer = kernel.kernel_slot("writer")
    mailed = write_series(writer, patches, list_address=pi_server.address)
    pi_server.post_many(mailed.mails)
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{kernel.test_cache()}"\n\n'
        f'[[lists]]\nname = "{pi_server.name}"\nurl = "{pi_server.url}"\n'
        f'address = "{pi_server.address}"\ntrees = ["linux"]\n\n'
        '[[trees]]\nname = "linux"\nurl = ""\nbranches = ["master"]\n\n'
        '[build]\narches = ["x86_64"]\n'
    )

    assert main(["--config", str(cfg), "check", mailed.msgids[0], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)

    assert sorted(p.name for p in host.iterdir()) == []  # no marker of any of the three
    dumps = list((kernel.test_cache() / "build").rglob(seen))
    assert dumps, "the patched mm/Makefile was read by make (in the sandbox)"
    env = dumps[0].read_text()
    assert "LOREBOT" not in env and "hunter2" not in env
    assert env.strip().splitlines()[-1] != "0"  # not root
    # the run completed and says which tools judged the series
    assert out["apply"]["ok"] is True
    assert set(out["check_results"]) >= {"build", "checkpatch", "kernel-doc"}
    kinds = {(n["check"], n["kind"]) for n in out["notes"]}
    assert ("checkpatch", "tool-changed") in kinds and ("kernel-doc", "tool-changed") in kinds
    assert any("mm/filemap.o" in v["objects"] for v in out["variants"])
