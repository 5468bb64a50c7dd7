"""`lorebot demo`: the whole main job offline, on embedded defaults.

A local public-inbox receives a demo series written against Debian's
linux-source-6.12; the service (poller, worker, mail, status page) picks it
up, checks it and writes the reply to the outbox.
"""

from __future__ import annotations

import mailbox
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.core.runner import Runner
from bot.core.states import SETTLED
from bot.demo.inbox import PublicInboxServer, free_port
from bot.demo.series import DEMO_PATCHES, write_series
from bot.trees.repo import Repo, Slot, tree_ref
from config.settings import Settings, load_settings
from state.db import Database

TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
TERMINAL = SETTLED


class DemoError(Exception):
    """The demo cannot run here; the message says what to install or free."""


@dataclass
class DemoResult:
    url: str
    series_url: str
    state: str
    replies: list[str]  # subjects of the mails in the outbox
    outbox: Path
    seconds_to_reply: float | None


def demo_settings(base: Settings, inbox_url: str, port: int, arches: list[str]) -> Settings:
    """Embedded defaults: one local list, one imported tree, the outbox, a local page."""
    state = base.paths.state / "demo"
    return load_settings(
        None,
        paths={"state": str(state), "cache": str(base.paths.cache)},
        lists=[
            {"name": "demo", "url": inbox_url, "address": "linux-mm@kvack.org", "trees": ["linux"]}
        ],
        trees=[{"name": "linux", "url": "", "branches": ["master"]}],
        intake={"poll_interval": 5, "incomplete_timeout": 600},
        build={"arches": arches, "jobs": base.build.jobs},
        mail={
            "mode": "outbox",
            "sender": "lorebot demo <lorebot@localhost>",
            "reported_by": "lorebot <lorebot@localhost>",
        },
        web={"listen": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
        service={"workers": 1},
    )


def ensure_tree(settings: Settings, say: Callable[[str], None]) -> str:
    """The imported linux-source-6.12 commit (imported on first use)."""
    repo = Repo.open(settings, Runner(settings.paths.logs / "demo"))
    sha = repo.branch_sha("linux", "master")
    if sha:
        return sha
    if not TARBALL.exists():
        raise DemoError(
            f"{TARBALL} is missing: apt-get install linux-source-6.12 (or run scripts/setup.sh)"
        )
    say(f"importing {TARBALL} into {repo.git_dir} (once, about a minute)")
    sha, files, secs = repo.import_tarball("linux", TARBALL)
    say(f"imported {files} files in {secs:.0f} s")
    return sha


def _outbox_subjects(outbox: Path) -> list[str]:
    if not (outbox / "new").exists() and not (outbox / "cur").exists():
        return []
    box = mailbox.Maildir(str(outbox), create=False)
    return [" ".join(str(m["Subject"]).split()) for m in box]


def run_demo(
    base: Settings,
    *,
    port: int = 0,
    arches: list[str] | None = None,
    timeout: float = 1800,
    keep_serving: Callable[[str], None] | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo; returns when the reply is in the outbox (or the series ended)."""
    from bot.run.scheduler import Service
    from bot.web.server import page_factory

    if not shutil.which("public-inbox-httpd"):
        raise DemoError(
            "public-inbox is not installed: apt-get install public-inbox (or run scripts/setup.sh)"
        )
    port = port or free_port()
    root = base.paths.state / "demo"
    if root.exists():
        shutil.rmtree(root)  # each demo starts from an empty inbox, database and outbox
    root.mkdir(parents=True)
    server = PublicInboxServer(root / "pi", name="demo", address="linux-mm@kvack.org")
    settings = demo_settings(base, server.url, port, arches or ["x86_64"])
    ensure_tree(settings, say)
    server.start()
    db = Database(settings.database_url)
    service = Service(settings, db, poll_interval=2, idle_wait=2, web=page_factory(settings, db))
    try:
        service.start()
        url = settings.web.base_url
        say(f"status page: {url}/")
        repo = Repo.open(settings, Runner(settings.paths.logs / "demo"))
        writer = Slot(repo, settings.paths.cache / "slots" / "demo-writer")
        writer.reset(tree_ref("linux", "master"))
        mailed = write_series(writer.path, DEMO_PATCHES, msgid_domain="demo.lorebot.invalid")
        server.post_many(mailed.mails)
        posted = time.monotonic()
        say(f"posted the demo series <{mailed.msgids[0]}> to {server.url}/")
        series_url = f"{url}/series/{mailed.msgids[0]}"
        state, replies, seconds = _wait(settings, db, mailed.msgids[0], posted, timeout, say)
        result = DemoResult(
            url=url,
            series_url=series_url,
            state=state,
            replies=replies,
            outbox=settings.paths.outbox,
            seconds_to_reply=seconds,
        )
        say(
            f"series {state}; {len(replies)} repl{'y' if len(replies) == 1 else 'ies'} in "
            f"{settings.paths.outbox}" + (f" after {seconds:.0f} s" if seconds else "")
        )
        for subject in replies:
            say(f"  {subject}")
        say(f"series page: {series_url}")
        if keep_serving:
            keep_serving(url)
        return result
    finally:
        service.stop(timeout=60)
        server.stop()
        db.dispose()


def _wait(
    settings: Settings,
    db: Database,
    msgid: str,
    posted: float,
    timeout: float,
    say: Callable[[str], None],
) -> tuple[str, list[str], float | None]:
    from sqlalchemy import select

    from state.models import SeriesRow

    deadline = posted + timeout
    last = ""
    first_reply: float | None = None
    ended: float | None = None
    settled_count = -1
    while time.monotonic() < deadline:
        with db.session() as s:
            row = s.scalars(select(SeriesRow).where(SeriesRow.msgid == msgid)).first()
            state, step = (row.state, row.step) if row else ("not seen yet", "")
        now = f"{state} {step}".strip()
        if now != last:
            say(f"[{time.monotonic() - posted:6.1f}s] series: {now}")
            last = now
        replies = _outbox_subjects(settings.paths.outbox)
        if replies and first_reply is None:
            first_reply = time.monotonic() - posted
        if state in TERMINAL:
            ended = ended or time.monotonic()
            # the run's replies are delivered one by one right after it ends
            settled = len(replies) == settled_count and time.monotonic() - ended > 2
            settled_count = len(replies)
            if (first_reply is not None and settled) or time.monotonic() - ended > 10:
                return state, replies, first_reply
        time.sleep(0.25)
    raise DemoError(f"the demo series did not finish within {timeout:.0f} s (state: {last})")
