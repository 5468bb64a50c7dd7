"""`lorebot serve` against trees on a real git server on loopback, made from
linux-source-6.12: a commit pushed while it runs is synced and tested on without being
told; a base-commit on no configured branch is fetched by sha; MAINTAINERS sends a tty
series to the tty tree; a series for an unconfigured tree that applies nowhere is skipped,
and nothing is mailed."""

from __future__ import annotations

import email
import mailbox
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.demo.inbox import free_port
from tests.support import kernel
from tests.support.gitserver import (
    GitDaemon,
    bare_git,
    borrowed_tree,
    commit_edit,
    format_patches,
)
from tests.support.pi import PublicInboxServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kernel
REPO = Path(__file__).resolve().parents[2]
TTY_URL = "https://git.kernel.org/pub/scm/linux/kernel/git/gregkh/tty.git"


def _config(tmp_path: Path, pi: PublicInboxServer, daemon: GitDaemon, port: int) -> Path:
    cfg = tmp_path / "lorebot.toml"
    cfg.write_text(f"""
[paths]
state = "{tmp_path / "state"}"
cache = "{kernel.test_cache()}"

[[lists]]
name = "{pi.name}"
url = "{pi.url}"
address = "{pi.address}"
trees = ["up"]

[[trees]]
name = "up"
url = "{daemon.url("up.git")}"
branches = ["master"]
sync_interval = 5
sync_retry_seconds = 1

[[trees]]
name = "tty"
url = "{daemon.url("tty.git")}"
public_url = "{TTY_URL}"
branches = ["master"]

[intake]
poll_interval = 5

[checks]
enabled = []

[web]
port = {port}
base_url = "http://127.0.0.1:{port}"
""")
    return cfg


def test_serve_follows_moving_trees_fetches_bases_and_routes_by_maintainers(
    kernel_git_dir: Path, pi_server: PublicInboxServer, tmp_path: Path
) -> None:
    import json
    import urllib.request

    k = bare_git(kernel_git_dir, "rev-parse", kernel.REF).strip()
    root = tmp_path / "served"
    up = borrowed_tree(root / "up.git", kernel_git_dir, "master", k)
    tty = borrowed_tree(root / "tty.git", kernel_git_dir, "master", k)
    t1 = commit_edit(
        tty,
        k,
        "drivers/tty/tty_io.c",
        "#undef TTY_DEBUG_HANGUP\n",
        "#undef TTY_DEBUG_HANGUP\n/* tty-next: debug off */\n",
        "tty: note the debug default",
    )
    bare_git(tty, "update-ref", "refs/heads/master", t1)
    sob = "\n\nSigned-off-by: Dev Eloper <dev@example.org>"
    # upstream's next commit (pushed while the service runs) and a series on it
    u1 = commit_edit(
        up,
        k,
        "mm/zswap.c",
        '#include "swap.h"\n',
        '#include "swap.h"\n/* zswap: upstream moved */\n',
        "mm: zswap: a comment upstream",
    )
    p1 = commit_edit(
        up,
        u1,
        "mm/zswap.c",
        "/* zswap: upstream moved */",
        "/* zswap: on top */",
        "mm: zswap: build on the new comment" + sob,
    )
    # a commit on a branch the settings do not name (reachable only by its sha), a series on it
    side = commit_edit(
        up,
        u1,
        "mm/zswap.c",
        "/* zswap: upstream moved */",
        "/* zswap: side */",
        "mm: zswap: a side branch",
    )
    bare_git(up, "update-ref", "refs/heads/side", side)
    p2 = commit_edit(
        up,
        side,
        "mm/zswap.c",
        "/* zswap: side */",
        "/* zswap: side, on top */",
        "mm: zswap: on the side" + sob,
    )
    # a tty series on the tty tree's own commit, without base-commit
    p3 = commit_edit(
        tty, t1, "drivers/tty/tty_io.c", "debug off", "debug stays off", "tty: reword" + sob
    )
    # a wireless series on a commit only wireless-next (not configured) has
    w0 = commit_edit(
        up,
        k,
        "net/wireless/core.c",
        '#include "core.h"\n',
        '#include "core.h"\n/* wireless-next only */\n',
        "wifi: a comment only wireless-next has",
    )
    p4 = commit_edit(
        up, w0, "net/wireless/core.c", "wireless-next only", "wireless-next!", "wifi: reword" + sob
    )
    daemon = GitDaemon(root)
    daemon.start()
    port = free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli.main",
            "--config",
            str(_config(tmp_path, pi_server, daemon, port)),
            "-v",
            "serve",
        ],
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def api(path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return json.loads(r.read().decode())

    def wait(what: str, cond: Any, timeout: float = 300) -> Any:
        return wait_for(
            cond,
            timeout,
            what,
            interval=0.5,
            ignore=(OSError,),
            context=lambda: "serve log:\n" + log.read_text()[-4000:],
        )

    def tree(name: str) -> dict[str, Any]:
        return next(t for t in api("/api/status")["trees"] if t["tree"] == name)

    def settled(msgid: str, state: str = "done") -> dict[str, Any]:
        return wait(
            f"{msgid} {state}", lambda: (d := api(f"/api/series/{msgid}"))["state"] == state and d
        )

    try:
        wait("the first sync of up", lambda: tree("up")["heads"].get("master") == k, 120)
        # 1. upstream moves while the service runs; nobody tells it to sync
        bare_git(up, "update-ref", "refs/heads/master", u1)
        wait("up to be synced to the new head", lambda: tree("up")["heads"].get("master") == u1, 60)
        series = [
            format_patches(up, u1, p1),
            format_patches(up, side, p2),
            format_patches(tty, t1, p3, base_commit=False),
            format_patches(up, w0, p4, base_commit=False),
        ]
        pi_server.post_many([m for mails in series for m in mails])
        s1, s2, s3, s4 = (
            str(email.message_from_bytes(mails[0])["Message-Id"]).strip("<>") for mails in series
        )
        run = settled(s1)["runs"][0]
        assert (run["tree"], run["branch"], run["base_sha"]) == ("up", "master", u1)
        # 2. the base-commit on no configured branch: fetched by sha
        run = settled(s2)["runs"][0]
        assert run["base_sha"] == side and run["tree"] == "up"
        ok = [t for t in run["tried"] if t["ok"]]
        assert ok[0]["how"] == "base-commit" and "fetched by sha from up" in ok[0]["reason"]
        # 3. no base-commit; MAINTAINERS names the tty tree (by its public URL)
        run = settled(s3)["runs"][0]
        assert (run["tree"], run["base_sha"]) == ("tty", t1)
        assert [t["how"] for t in run["tried"] if t["ok"]] == ["maintainers"]
        # 4. its MAINTAINERS tree is not configured here and it applies nowhere
        d4 = settled(s4, "skipped")
        assert "wireless" in d4["reason"] and "not a configured tree" in d4["reason"]
        assert d4["replies"] == []
        # nothing was mailed at all (no checks ran, nothing is found)
        box = tmp_path / "state" / "outbox"
        assert not box.exists() or len(mailbox.Maildir(box)) == 0
        status = api("/api/status")
        assert status["oldest_waiting"] is None
        assert tree("tty")["last_ok"] and tree("up")["failures"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        daemon.stop()
    assert code == 0, log.read_text()[-3000:]
