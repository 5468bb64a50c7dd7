"""End to end: `lorebot serve` as a real process, a series posted to a real public-inbox,
the reply at a real SMTP server, the status page showing the series; and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from email import message_from_bytes
from pathlib import Path

import pytest

from bot.demo.inbox import free_port
from bot.demo.series import DEMO_PATCHES, write_series
from tests.support import kernel
from tests.support.pi import PublicInboxServer
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.kernel
REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer,
                 port: int) -> Path:
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(f"""
[paths]
state = "{tmp_path / 'state'}"
cache = "{kernel.test_cache()}"

[[lists]]
name = "{pi_server.name}"
url = "{pi_server.url}"
address = "{pi_server.address}"
trees = ["linux"]

[[trees]]
name = "linux"
url = ""
branches = ["master"]

[intake]
poll_interval = 5

[build]
arches = ["x86_64"]

[mail]
mode = "smtp"
smtp_host = "127.0.0.1"
smtp_port = {smtp_server.port}
sender = "lorebot <lorebot@example.org>"

[web]
port = {port}
base_url = "http://127.0.0.1:{port}"
""")
    return cfg


def start_serve(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "--config", str(cfg), "serve"],
        cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def api(port: int, path: str) -> object:
    return json.loads(get(port, path))


def wait_for(what: str, cond, timeout: float, log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = cond()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; serve log:\n{log.read_text()[-4000:]}")


def series_state(port: int) -> dict[str, object] | None:
    rows = api(port, "/api/series")
    assert isinstance(rows, list)
    return rows[0] if rows else None


def post_demo(pi_server: PublicInboxServer) -> list[str]:
    writer = kernel.kernel_slot("writer")
    mailed = write_series(writer, DEMO_PATCHES, list_address=pi_server.address)
    pi_server.post_many(mailed.mails)
    return mailed.msgids


def test_serve_replies_by_smtp_and_shows_the_series(
    kernel_git_dir: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = start_serve(write_config(tmp_path, pi_server, smtp_server, port), log)
    try:
        wait_for("the status page", lambda: get(port, "/healthz") == "ok", 60, log)
        msgids = post_demo(pi_server)
        posted = time.monotonic()
        wait_for("a reply at the SMTP server", lambda: smtp_server.received, 900, log)
        latency = time.monotonic() - posted
        done = wait_for("the series to be done",
                        lambda: (s := series_state(port)) and s["state"] == "done" and s, 120, log)
        assert done["msgid"] == msgids[0] and done["findings"] >= 1
        time.sleep(3)  # the replies of one run are delivered together
        mails = {m["In-Reply-To"]: m for m in
                 (message_from_bytes(r.content) for r in smtp_server.received)}
        # patch 2 breaks MIGRATION=n builds, patch 3 adds a W=1 warning, and a
        # summary goes to the cover letter because findings span patches
        assert set(mails) == {f"<{msgids[0]}>", f"<{msgids[2]}>", f"<{msgids[3]}>"}
        body2 = mails[f"<{msgids[2]}>"].get_payload(decode=True).decode()
        assert "folio_migrate_flags" in body2 and "MIGRATION=n" in body2
        body3 = mails[f"<{msgids[3]}>"].get_payload(decode=True).decode()
        assert "released" in body3 and "unused-but-set-variable" in body3
        assert all("dev@example.org" in r.rcpt_tos for r in smtp_server.received)
        detail = api(port, f"/api/series/{msgids[0]}")
        assert isinstance(detail, dict) and detail["replies"]
        page = get(port, "/series/" + msgids[0])
        assert "folio_migrate_flags" in page and "mm/filemap.c" in page
        print(f"\nlanding -> reply at SMTP: {latency:.1f} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]


def test_kill_9_mid_run_then_restart_sends_exactly_one_reply(
    kernel_git_dir: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    cfg = write_config(tmp_path, pi_server, smtp_server, port)
    proc = start_serve(cfg, log)
    try:
        post_demo(pi_server)
        wait_for("the run to start", lambda: (s := series_state(port)) and
                 s["state"] == "running", 300, log)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not smtp_server.received
    proc = start_serve(cfg, log)
    try:
        wait_for("the series to be done after the restart",
                 lambda: (s := series_state(port)) and s["state"] == "done", 900, log)
        wait_for("the reply", lambda: smtp_server.received, 60, log)
        time.sleep(8)  # a second (duplicate) reply would arrive by now
        targets = [message_from_bytes(r.content)["In-Reply-To"] for r in smtp_server.received]
        assert len(targets) == len(set(targets)) == len(smtp_server.received)
        detail = api(port, f"/api/series/{series_state(port)['msgid']}")  # type: ignore[index]
        assert isinstance(detail, dict) and len(detail["runs"]) >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
