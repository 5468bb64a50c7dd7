"""The status pages' inputs and a live server: rows in every interesting state, the token.

test_web reads them through FastAPI's client; test_browser through chromium.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from bot.demo.inbox import free_port
from config.settings import Settings, WebSettings
from state.db import Database
from state.models import FindingRow, PatchRow, PollRow, ReplyRow, RunRow, SeriesRow, utcnow
from tests.support.waiting import wait_for

# a Message-ID with the characters that need care in URLs
MSGID = "20261128.0412-1-jane+mm=fix/x@example.org"
TOKEN = "s3cret-token"


def populate(db: Database, settings: Settings) -> dict[str, Any]:
    """A few series in every interesting state, with a run, findings, logs, a reply, polls."""
    now = utcnow()
    logs = settings.paths.logs
    with db.session() as s:
        done = SeriesRow(
            list_name="linux-mm",
            msgid=MSGID,
            subject="[PATCH v2 0/2] mm: fix the foo counter",
            version=2,
            total=2,
            author="Jane Hacker",
            author_email="jane@example.org",
            complete=True,
            has_cover=True,
            state="done",
            attempts=1,
            base_commit="a" * 40,
        )
        done.patches = [
            PatchRow(idx=1, msgid="p1-" + MSGID, subject="[PATCH v2 1/2] mm: add foo counter"),
            PatchRow(idx=2, msgid="p2-" + MSGID, subject="[PATCH v2 2/2] mm: use foo counter"),
        ]
        s.add(done)
        s.flush()
        run = RunRow(
            series_id=done.id,
            state="done",
            worker="host/1/w0",
            started_at=now - timedelta(minutes=4),
            finished_at=now,
            tree="mm",
            branch="mm-unstable",
            base_sha="b" * 40,
            apply_ok=True,
            checks={
                "build": "ok: 1 finding(s)",
                "checkpatch": "ok: 1 finding(s)",
                "kernel-doc": "ok: 0 finding(s)",
            },
            timings={"apply": 2.5, "build": 180.2},
            patch_commits=[{"index": 1, "commit": "c" * 40}, {"index": 2, "commit": "d" * 40}],
            tried=[
                {
                    "how": "base-commit",
                    "tree": "mm",
                    "branch": "",
                    "sha": "a" * 40,
                    "ok": True,
                    "reason": "",
                }
            ],
            notes=[
                {
                    "check": "build",
                    "kind": "variant-dropped",
                    "arch": "arm64",
                    "message": "arm64 defconfig (base) not built: estimated 90 s of work",
                    "config": "",
                    "detail": "",
                }
            ],
            plan={
                "variants": [
                    {
                        "arch": "x86_64",
                        "config": "defconfig MIGRATION=n",
                        "flip": "MIGRATION=n",
                        "objects": ["mm/foo.o"],
                        "reason": "foo() is declared only when CONFIG_MIGRATION is set",
                    }
                ],
                "dropped": [
                    {
                        "arch": "arm64",
                        "config": "defconfig",
                        "flip": None,
                        "objects": ["mm/foo.o"],
                        "reason": "over the <budget>",
                    }
                ],
                "suites": [
                    {
                        "suite": "vma",
                        "kind": "host",
                        "base": [15, 0, 0],
                        "after": [13, 2, 0],
                        "state_base": "passed",
                        "state_after": "failed",
                    },
                    {
                        "suite": "maple_tree",
                        "kind": "host",
                        "base": None,
                        "after": [763692833, 0, 0],
                        "state_base": "not run",
                        "state_after": "passed",
                    },
                ],
                "coverage": {
                    "lines": 4,
                    "covered": 3,
                    "uncovered": [
                        {"file": "mm/foo.c", "lines": [12], "reason": "symbol unsatisfiable"}
                    ],
                },
            },
        )
        s.add(run)
        s.flush()
        run_dir = logs / str(run.id)
        run_dir.mkdir(parents=True)
        (run_dir / "build").mkdir()
        (run_dir / "build" / "x86_64.log").write_text("make -j2 W=1\nmm/foo.c:12: warning\n")
        (run_dir / "apply.log").write_text("Applying: mm: add foo counter\n")
        (run_dir / "evil.html").write_text("<script>alert(1)</script>")
        secret = logs.parent.parent / "secret.txt"
        secret.write_text("top secret")
        (run_dir / "escape.log").symlink_to(secret)
        run.log_dir = str(run_dir)
        run.findings = [
            FindingRow(
                check="build",
                kind="warning",
                severity="warning",
                patch_index=1,
                file="mm/foo.c",
                line=12,
                message="unused variable 'ret'",
                fingerprint="f1",
                data={
                    "check": "build",
                    "kind": "warning",
                    "severity": "warning",
                    "patch": 1,
                    "file": "mm/foo.c",
                    "line": 12,
                    "message": "unused variable 'ret'",
                    "arch": "x86_64",
                    "config": "defconfig",
                    "option": "-Wunused-variable",
                    "excerpt": "  11 |\tint ret;\n> 12 |\tint <unused> = 0;",
                    "reproduce": ["make ARCH=x86_64 defconfig", "make W=1 mm/foo.o"],
                },
            ),
            FindingRow(
                check="checkpatch",
                kind="LONG_LINE",
                severity="check",
                patch_index=2,
                file="mm/foo.c",
                line=40,
                message="line length of 120 exceeds 100",
                fingerprint="f2",
                data={},
            ),
        ]
        s.add(
            ReplyRow(
                series_id=done.id,
                run_id=run.id,
                msgid="lorebot.1.reply@localhost",
                in_reply_to=MSGID,
                subject="Re: [PATCH v2 0/2] mm: fix the foo counter",
                to_addrs=["Jane Hacker <jane@example.org>"],
                state="sent",
                sent_at=now,
                raw="From: lorebot\nSubject: Re: ...\n\nHi Jane,\n",
            )
        )
        failed = SeriesRow(
            list_name="netdev",
            msgid="bob-1@example.com",
            subject="[PATCH] net: x",
            author="Bob Builder",
            author_email="bob@example.com",
            state="failed",
            reason="did not apply",
        )
        queued = SeriesRow(
            list_name="netdev",
            msgid="carol-1@example.com",
            subject="[PATCH] net: y",
            author="Carol",
            state="queued",
        )
        running = SeriesRow(
            list_name="linux-mm",
            msgid="dave-1@example.com",
            subject="[PATCH] mm: z",
            author="Dave",
            state="running",
            claimed_by="otherhost/42/w1",
            claimed_at=now - timedelta(seconds=75),
            step="build",
        )
        s.add_all([failed, queued, running])
        s.add_all(
            [
                PollRow(
                    list_name="linux-mm",
                    started_at=now - timedelta(seconds=30),
                    seconds=1.5,
                    new_messages=7,
                ),
                PollRow(list_name="netdev", started_at=now - timedelta(hours=2), seconds=0.4),
                PollRow(
                    list_name="netdev",
                    started_at=now - timedelta(seconds=20),
                    seconds=60.0,
                    error="HTTPError: 503 Service Unavailable",
                ),
            ]
        )
        s.flush()
        return {"run_id": run.id, "done_id": done.id, "running_id": running.id, "secret": secret}


def with_token(settings: Settings, token: str = TOKEN) -> Settings:
    return settings.model_copy(update={"web": WebSettings(token=token)})


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """The app on a real uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NO_CHROMIUM = "needs Debian chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"


def have_chromium() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


@contextmanager
def headless_chromium(profile: Path) -> Iterator[Any]:
    """A Selenium driver of a headless chromium with its profile in `profile`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = Options()
    opts.binary_location = str(CHROMIUM)  # with both paths given, Selenium Manager never runs
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(
        service=DriverService(executable_path=str(CHROMEDRIVER)), options=opts
    )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
