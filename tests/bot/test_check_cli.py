"""`lorebot check --json [--send]` on the real kernel, through a real public-inbox and SMTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.demo.series import DEMO_PATCHES, write_series
from tests.support import kernel
from tests.support.pi import PublicInboxServer
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.kernel


def config(tmp_path: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer) -> Path:
    path = tmp_path / "lorebot.toml"
    path.write_text(
        f'[paths]\nstate = "{tmp_path / "state"}"\ncache = "{kernel.test_cache()}"\n\n'
        f'[[lists]]\nname = "{pi_server.name}"\nurl = "{pi_server.url}"\n'
        f'address = "{pi_server.address}"\ntrees = ["linux"]\n\n'
        '[[trees]]\nname = "linux"\nurl = ""\nbranches = ["master"]\n\n'
        '[build]\narches = ["x86_64"]\n\n'
        f'[mail]\nmode = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_server.port}\n'
    )
    return path


def test_check_json_shape_findings_and_send(
    kernel_git_dir: Path,
    pi_server: PublicInboxServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    writer = kernel.kernel_slot("writer")
    mailed = write_series(writer, DEMO_PATCHES, list_address=pi_server.address)
    pi_server.post_many(mailed.mails)
    cfg = config(tmp_path, pi_server, smtp_server)

    assert main(["--config", str(cfg), "check", mailed.msgids[2], "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"series", "base", "apply", "findings", "replies"}
    assert out["series"]["msgid"] == mailed.msgids[0] and out["series"]["version"] == 1
    assert [p["index"] for p in out["series"]["patches"]] == [1, 2, 3]
    assert out["base"] == {"tree": "linux", "branch": "master", "sha": mailed.base}
    assert out["apply"]["ok"] is True and out["apply"]["failed_patch"] is None
    by_patch = {f["patch"]: f for f in out["findings"] if f["check"] == "build"}
    err = by_patch[2]
    assert err["kind"] == "error" and err["severity"] == "error"
    assert err["file"] == "mm/filemap.c" and isinstance(err["line"], int)
    assert "folio_migrate_flags" in err["message"]
    assert err["arch"] == "x86_64" and err["symbols"].get("MIGRATION") == "n"
    assert "MIGRATION=n" in err["config"]
    warn = by_patch[3]
    assert warn["kind"] == "warning" and warn["file"] == "mm/mempool.c"
    assert 1 not in by_patch  # the clean patch has no build finding
    # the plan: what was built (with its objects) and what was dropped, and why
    built = {(v["arch"], v["flip"]): v for v in out["variants"]}
    assert set(built) >= {("x86_64", None), ("x86_64", "MIGRATION=n")}
    assert "mm/filemap.o" in built[("x86_64", "MIGRATION=n")]["objects"]
    assert "MIGRATION=n" in built[("x86_64", "MIGRATION=n")]["config"]
    assert all(v["reason"] for v in out["variants_dropped"])
    # patch coverage: every changed line of the three patches compiled in some variant
    cov = out["coverage"]
    assert cov["lines"] > 0 and cov["covered"] == cov["lines"], cov
    assert cov["uncovered"] == []
    assert all(n["kind"] != "error" for n in out["notes"])
    assert out["check_results"]["build"] == "found"
    assert {r["in_reply_to"] for r in out["replies"]} == {
        mailed.msgids[0],
        mailed.msgids[2],
        mailed.msgids[3],
    }
    assert all(r["state"] == "draft" for r in out["replies"])
    assert not smtp_server.received  # without --send nothing leaves

    assert main(["--config", str(cfg), "check", mailed.msgids[0], "--json", "--send"]) == 0
    sent = json.loads(capsys.readouterr().out)["replies"]
    assert all(r["state"] == "sent" and r["msgid"] for r in sent)
    assert len(smtp_server.received) == 3
