"""Follow a list's public-inbox git epochs: bare mirrors, new commits, raw messages.

Each epoch (`<url>/git/N.git` on lore, `<url>/N` on a local public-inbox) is a
git repository with one commit per message, blob `m` holding the raw mail. We
keep a bare mirror per epoch, fetch with forced refs (purges rewrite
history), and walk `cursor..master`. The cursor per (list, epoch) lives in the
Cursor table and is only moved after the messages it covers are committed, so
a crash re-reads some messages and the Message-ID dedupe drops them.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import select

from bot.core.git import Git, blob_id, low_speed
from bot.core.runner import Runner
from config.settings import ListSettings, Settings
from state.db import Database
from state.models import Cursor

log = logging.getLogger("lorebot.lore")
_EPOCH_KEY_RE = re.compile(r"/(?:git/)?(\d+)(?:\.git)?$")
BATCH = 1000  # messages read, recorded and committed together


class InboxError(Exception):
    """The list's public-inbox could not be reached or read; the next poll retries."""


@dataclass(frozen=True)
class Epoch:
    number: int
    urls: tuple[str, ...]  # candidate clone URLs, best first
    fingerprint: str = ""  # from manifest.js.gz; "" when unknown


@dataclass(frozen=True)
class InboxMail:
    """One message as stored in an epoch."""

    epoch: int
    commit: str
    blob: str
    raw: bytes  # the whole mail, or only its head when it is over the read limit
    size: int = -1  # the mail's size in the inbox; -1: len(raw)
    landed_at: datetime | None = None  # when the inbox took it in (its commit's time, UTC)

    @property
    def truncated(self) -> bool:
        return self.size > len(self.raw)


def mirror_dir(settings: Settings, lst: ListSettings, epoch: int) -> Path:
    """The bare mirror of one epoch: <cache>/inboxes/<list>/<N>.git."""
    return settings.paths.cache / "inboxes" / lst.name / f"{epoch}.git"


def _candidates(lst: ListSettings, n: int, key: str = "") -> tuple[str, ...]:
    base = lst.url.rstrip("/")
    urls = []
    if key:
        parts = urlsplit(base)
        urls.append(f"{parts.scheme}://{parts.netloc}{key}")
    urls += [f"{base}/git/{n}.git", f"{base}/{n}"]
    return tuple(dict.fromkeys(urls))


def parse_manifest(data: bytes, lst: ListSettings) -> list[Epoch]:
    """Epochs named in a manifest.js.gz (gzip JSON keyed by '/name/git/N.git')."""
    try:
        manifest = json.loads(gzip.decompress(data))
    except (OSError, ValueError) as e:
        raise InboxError(f"{lst.name}: manifest.js.gz is not gzip JSON: {e}") from e
    name = urlsplit(lst.url).path.rstrip("/")
    epochs: dict[int, Epoch] = {}
    for key, info in manifest.items():
        m = _EPOCH_KEY_RE.search(key)
        # one manifest may describe several inboxes: keep this list's epochs
        if not m or (name and not key.startswith(name + "/")):
            continue
        n = int(m.group(1))
        fp = str(info.get("fingerprint") or "") if isinstance(info, dict) else ""
        epochs[n] = Epoch(n, _candidates(lst, n, key), fp)
    return [epochs[n] for n in sorted(epochs)]


def discover_epochs(settings: Settings, lst: ListSettings, runner: Runner) -> list[Epoch]:
    """The list's epochs, from manifest.js.gz, else by probing 0, 1, ... with ls-remote."""
    url = f"{lst.url.rstrip('/')}/manifest.js.gz"
    try:
        resp = requests.get(
            url, timeout=(settings.network.connect_timeout, settings.intake.http_timeout)
        )
    except requests.RequestException as e:
        raise InboxError(f"{lst.name}: {lst.url} is unreachable: {e}") from e
    if resp.status_code == 200:
        # an inbox with no mail yet has an empty manifest
        return parse_manifest(resp.content, lst)
    if resp.status_code >= 500:
        raise InboxError(f"{lst.name}: {url} answered HTTP {resp.status_code}")
    found: list[Epoch] = []
    for n in range(10_000):
        epoch = Epoch(n, _candidates(lst, n))
        if not any(_ls_remote(runner, u, settings) for u in epoch.urls):
            break
        found.append(epoch)
    if not found:
        raise InboxError(
            f"{lst.name}: no epochs found at {lst.url} (no manifest.js.gz, no git/0.git, no /0)"
        )
    return found


def _network(settings: Settings) -> tuple[str, ...]:
    return low_speed(settings.network.low_speed_limit, settings.network.low_speed_time)


def _ls_remote(runner: Runner, url: str, settings: Settings) -> bool:
    r = Git(runner).run(
        *_network(settings),
        "ls-remote",
        "--heads",
        url,
        timeout=settings.network.ls_remote_timeout,
        name="ls-remote",
    )
    return r.ok and "refs/heads/" in r.stdout


def fetch_epoch(settings: Settings, lst: ListSettings, epoch: Epoch, runner: Runner) -> Path:
    """Create or update the bare mirror of one epoch; refs are forced (history may change)."""
    gitdir = mirror_dir(settings, lst, epoch.number)
    git = Git(runner, git_dir=gitdir)
    if not (gitdir / "HEAD").exists():
        gitdir.parent.mkdir(parents=True, exist_ok=True)
        git.run("init", "-q", "--bare", check=True, name="init-mirror")
    known = git.run("config", "lorebot.url").stdout.strip()
    urls = [known] if known else []
    urls += [u for u in epoch.urls if u != known]
    errors = []
    for url in urls:
        # bounded twice: a stall by the low-speed limit, a slow trickle by fetch_timeout;
        # the runner kills the fetch's process group (its remote helper too)
        r = git.run(
            *_network(settings),
            "fetch",
            "--quiet",
            "--no-tags",
            "--prune",
            "--force",
            url,
            "+refs/heads/*:refs/heads/*",
            timeout=settings.network.fetch_timeout,
            name="fetch-epoch",
        )
        if r.ok:
            if url != known:
                git.run("config", "lorebot.url", url, check=True)
            return gitdir
        errors.append(f"{url}: {r.stderr.strip()[-300:]}")
    raise InboxError(f"{lst.name}: cannot fetch epoch {epoch.number}: " + "; ".join(errors))


def tip(runner: Runner, gitdir: Path) -> str:
    """The epoch's master commit, "" when it has none."""
    r = Git(runner, git_dir=gitdir).run("rev-parse", "-q", "--verify", "refs/heads/master")
    return r.stdout.strip() if r.ok else ""


def new_commits(runner: Runner, gitdir: Path, cursor: str, head: str) -> list[str]:
    """Commits after `cursor` up to `head`, oldest first.

    After a rewrite the cursor is no longer an ancestor: walk from the fork
    point (the merge base), or everything when there is none; the Message-ID
    dedupe drops what was already taken in.
    """
    git = Git(runner, git_dir=gitdir)
    start = cursor
    if cursor:
        anc = git.run("merge-base", "--is-ancestor", cursor, head)
        if not anc.ok:
            base = git.run("merge-base", cursor, head)
            start = base.stdout.strip() if base.ok else ""
            log.warning(
                "%s: history rewritten (cursor %s not in master); re-walking from %s",
                gitdir,
                cursor[:12],
                start[:12] or "the start",
            )
    span = f"{start}..{head}" if start else head
    r = git.run("rev-list", "--reverse", span, check=True, timeout=3600, name="rev-list")
    return r.stdout.split()


def parse_timestamped(text: str) -> list[tuple[datetime, str]]:
    """`git rev-list --timestamp` lines ("<unix time> <sha>") → (UTC time, sha) (pure)."""
    out = []
    for line in text.splitlines():
        stamp, _, sha = line.strip().partition(" ")
        if stamp.isdigit() and sha:
            out.append((datetime.fromtimestamp(int(stamp), UTC).replace(tzinfo=None), sha))
    return out


def landing_times(runner: Runner, gitdir: Path, commits: list[str]) -> dict[str, datetime]:
    """When the inbox took in each commit's message: its committer time, read in one
    `git rev-list --no-walk` over the commits (fed on stdin)."""
    if not commits:
        return {}
    r = Git(runner, git_dir=gitdir).run(
        "rev-list",
        "--no-walk=unsorted",
        "--timestamp",
        "--stdin",
        input="".join(f"{c}\n" for c in commits),
        timeout=3600,
        name="rev-list-times",
    )
    return {sha: t for t, sha in parse_timestamped(r.stdout)} if r.ok else {}


#: What is read of a mail over the read limit: its headers, for the record of its refusal.
HEAD_BYTES = 64 * 1024


def read_blobs(
    runner: Runner, gitdir: Path, commits: list[str], epoch: int, max_bytes: int | None = None
) -> list[InboxMail]:
    """The raw `m` blob of each commit, read in one `git cat-file --batch`.

    Sizes are asked first: a mail over `max_bytes` is never read whole, only
    its first HEAD_BYTES (its headers), so a 50 MB mail costs no 50 MB here.
    """
    git = Git(runner, git_dir=gitdir)
    specs = [f"{c}:m" for c in commits]
    sizes = git.object_sizes(specs, timeout=3600)
    limit = max_bytes if max_bytes is not None else max(sizes.values(), default=0)
    blobs = git.read_blobs([s for s in specs if sizes.get(s, 0) <= limit], timeout=3600)
    landed = landing_times(runner, gitdir, commits)
    mails: list[InboxMail] = []
    for commit, spec in zip(commits, specs, strict=True):
        size = sizes.get(spec)
        if size is None:
            log.warning("%s: commit %s has no message blob", gitdir, commit)
            continue
        if size > limit:
            oid = git.out("rev-parse", spec, name="rev-parse-blob")
            head = git.read_head(oid, HEAD_BYTES)
            mails.append(InboxMail(epoch, commit, oid, head, size, landed.get(commit)))
            continue
        data = blobs.get(spec)
        if data is None:
            continue
        mails.append(InboxMail(epoch, commit, blob_id(data), data, len(data), landed.get(commit)))
    return mails


def get_cursor(db: Database, list_name: str, epoch: int) -> Cursor | None:
    """The cursor of one (list, epoch), if any."""
    with db.session() as s:
        return s.get(Cursor, (list_name, epoch))


def set_cursor(
    db: Database, list_name: str, epoch: int, commit: str, fingerprint: str | None = None
) -> None:
    """Move the cursor; call only after the messages up to `commit` are committed."""
    with db.session() as s:
        row = s.get(Cursor, (list_name, epoch))
        if row is None:
            row = Cursor(list_name=list_name, epoch=epoch, commit=commit)
            s.add(row)
        row.commit = commit
        if fingerprint is not None:
            row.fingerprint = fingerprint


def cursors(db: Database, list_name: str) -> dict[int, Cursor]:
    """All cursors of a list, by epoch."""
    with db.session() as s:
        rows = s.scalars(select(Cursor).where(Cursor.list_name == list_name)).all()
        return {r.epoch: r for r in rows}


@dataclass(frozen=True)
class Batch:
    """New messages of one epoch; `last` is the commit the cursor may move to."""

    epoch: Epoch
    mails: list[InboxMail]
    last: str
    final: bool  # the epoch's tip is reached


def new_mail(
    settings: Settings, db: Database, lst: ListSettings, runner: Runner
) -> Iterator[Batch]:
    """Fetch every epoch that changed and yield its new messages in batches, in order.

    The caller records each batch, commits, then calls `set_cursor(...)`.
    """
    epochs = discover_epochs(settings, lst, runner)
    known = cursors(db, lst.name)
    for epoch in epochs:
        cur = known.get(epoch.number)
        gitdir = mirror_dir(settings, lst, epoch.number)
        unchanged = (
            cur is not None
            and epoch.fingerprint
            and cur.fingerprint == epoch.fingerprint
            and (gitdir / "HEAD").exists()
        )
        if unchanged:
            continue
        fetch_epoch(settings, lst, epoch, runner)
        head = tip(runner, gitdir)
        if not head:
            continue
        commits = new_commits(runner, gitdir, cur.commit if cur else "", head)
        if not commits:
            yield Batch(epoch, [], head, True)
            continue
        for i in range(0, len(commits), BATCH):
            chunk = commits[i : i + BATCH]
            yield Batch(
                epoch,
                read_blobs(runner, gitdir, chunk, epoch.number, settings.intake.max_message_bytes),
                chunk[-1],
                i + BATCH >= len(commits),
            )


def skip_history(settings: Settings, db: Database, lst: ListSettings, runner: Runner) -> int:
    """Start a list with no cursor at its inbox's current end; returns the epochs marked.

    For a first start on a big list, where taking in years of history is not wanted.
    """
    if cursors(db, lst.name):
        return 0
    epochs = discover_epochs(settings, lst, runner)
    for epoch in epochs:
        gitdir = fetch_epoch(settings, lst, epoch, runner)
        head = tip(runner, gitdir)
        if head:
            set_cursor(db, lst.name, epoch.number, head, epoch.fingerprint)
    return len(epochs)
