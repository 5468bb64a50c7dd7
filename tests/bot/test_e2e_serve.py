"""End to end: `lorebot serve` as a real process, a series posted to a real public-inbox,
the reply at a real SMTP server, the status page showing the series; and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.demo.inbox import free_port
from bot.demo.series import DEMO_PATCHES, write_series
from tests.support import kernel
from tests.support.pi import PublicInboxServer
from tests.support.smtpd import SmtpServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kernel
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def write_config(
    tmp_path: Path, pi_server: PublicInboxServer, smtp_server: SmtpServer, port: int
) -> Path:
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(f"""
[paths]
state = "{tmp_path / "state"}"
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
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def api(port: int, path: str) -> object:
    return json.loads(get(port, path))


def wait_serve(what: str, cond: Callable[[], T], timeout: float, log: Path) -> T:
    """wait_for with the serve log's tail on failure; a page not up yet is "not yet"."""
    return wait_for(
        cond,
        timeout,
        what,
        interval=0.5,
        ignore=(OSError,),
        context=lambda: "serve log:\n" + log.read_text()[-4000:],
    )


def series_detail(port: int, msgid: str) -> dict[str, Any]:
    detail = api(port, f"/api/series/{msgid}")
    assert isinstance(detail, dict)
    return detail


def replies_settled(port: int, msgid: str, received: int) -> bool:
    """Every reply recorded for the series is sent, and the server has (at least) them."""
    replies = series_detail(port, msgid)["replies"]
    return bool(replies) and all(r["state"] == "sent" for r in replies) and received >= len(replies)


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
        wait_serve("the status page", lambda: get(port, "/healthz") == "ok", 60, log)
        msgids = post_demo(pi_server)
        wait_serve("a reply at the SMTP server", lambda: smtp_server.received, 900, log)
        done = wait_serve(
            "the series to be done",
            lambda: (s := series_state(port)) and s["state"] == "done" and s,
            120,
            log,
        )
        assert done["msgid"] == msgids[0] and done["findings"] >= 1
        # the replies of one run are delivered together: wait for all of them
        wait_serve(
            "every reply at the SMTP server",
            lambda: replies_settled(port, msgids[0], len(smtp_server.received)),
            120,
            log,
        )
        mails = {
            m["In-Reply-To"]: m
            for m in (message_from_bytes(r.content) for r in smtp_server.received)
        }
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
        # killed while a check runs, after the claim, the fetch and the apply
        wait_serve(
            "a check to be under way",
            lambda: (
                (s := series_state(port))
                and s["state"] == "running"
                and series_detail(port, str(s["msgid"]))["step"] not in ("", "fetch", "apply")
            ),
            300,
            log,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not smtp_server.received
    proc = start_serve(cfg, log)
    try:
        wait_serve(
            "the series to be done after the restart",
            lambda: (s := series_state(port)) and s["state"] == "done",
            900,
            log,
        )
        msgid = str(series_state(port)["msgid"])  # type: ignore[index]
        # delivery is done when every recorded reply is sent; a duplicate (a second
        # row, or a second send of one) shows as more mails than replies
        wait_serve(
            "the replies", lambda: replies_settled(port, msgid, len(smtp_server.received)), 120, log
        )
        targets = [message_from_bytes(r.content)["In-Reply-To"] for r in smtp_server.received]
        detail = series_detail(port, msgid)
        assert len(targets) == len(set(targets)) == len(detail["replies"])
        assert len(detail["runs"]) >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
