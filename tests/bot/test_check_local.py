"""`lorebot check` on local mail (before posting): stdin, patch files; the same findings
as the posted series, checked through a real public-inbox; nothing mailed without --send."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.demo.series import write_series
from tests.support.fakelinux import fake_tree
from tests.support.fakeseries import PATCHES, write_config
from tests.support.kernel import git
from tests.support.pi import PublicInboxServer
from tests.support.smtpd import SmtpServer

REPO = Path(__file__).resolve().parents[2]


def lorebot(cfg: Path, *args: str, stdin: bytes = b"") -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "--config", str(cfg), *args, "--json"],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr.decode()
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def _findings(out: dict[str, Any]) -> list[tuple[object, ...]]:
    return sorted(
        (f["check"], f["kind"], f["patch"], f["file"], f["message"], f["fingerprint"])
        for f in out["findings"]
    )


@pytest.mark.skipif(not all(shutil.which(t) for t in ("gcc", "make")), reason="needs gcc and make")
def test_local_mail_gives_the_findings_of_the_posted_series(
    tmp_path: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer
) -> None:
    upstream = fake_tree(tmp_path / "upstream")
    smtp = smtp_server.port
    mail = f'[mail]\nmode = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp}\n'
    cfg = write_config(tmp_path, pi_server, upstream, mail)
    assert (
        subprocess.run(
            [sys.executable, "-m", "bot.cli.main", "--config", str(cfg), "tree", "sync"],
            cwd=REPO,
            capture_output=True,
        ).returncode
        == 0
    )
    git(upstream, "checkout", "-qb", "topic")
    mailed = write_series(upstream, PATCHES, list_address=pi_server.address)
    pi_server.post_many(mailed.mails)

    posted = lorebot(cfg, "check", mailed.msgids[0])
    assert any("foo_missing" in f["message"] for f in posted["findings"])

    # git format-patch --stdout | lorebot check -
    mbox = subprocess.run(
        ["git", "format-patch", "--stdout", "--cover-letter", f"{mailed.base}..HEAD"],
        cwd=upstream,
        capture_output=True,
        check=True,
    ).stdout
    piped = lorebot(cfg, "check", "-", stdin=mbox)
    assert _findings(piped) == _findings(posted)
    assert [p["subject"] for p in piped["series"]["patches"]] == [
        p["subject"] for p in posted["series"]["patches"]
    ]
    assert piped["base"] == posted["base"]

    # lorebot check ./v2/*.patch
    out = tmp_path / "v2"
    git(upstream, "format-patch", "-q", "-o", str(out), f"{mailed.base}..HEAD")
    files = sorted(str(p) for p in out.glob("*.patch"))
    assert len(files) == 2
    from_files = lorebot(cfg, "check", *files)
    assert _findings(from_files) == _findings(posted)
    assert _findings(lorebot(cfg, "check", str(out))) == _findings(posted)  # the directory
    assert [r["state"] for r in from_files["replies"]] == ["draft"]
    assert not smtp_server.received  # nothing mailed without --send
