"""The one module that imports b4: threads from a public-inbox, series from a thread.

b4 keeps its configuration in module globals and reads git config through
subprocesses, so every call runs under one lock, with b4's git config isolated
(GIT_CONFIG_GLOBAL pointing to a file written here, no system config, cache and
data directories under `paths.cache`). Attestation is off: it makes DNS
look-ups and proves nothing for a review robot.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import b4
import liblore
import requests
import requests.adapters

from bot.core.models import Series
from config.settings import ListSettings, Settings

if TYPE_CHECKING:
    from bot.trees.repo import Repo

log = logging.getLogger("lorebot.b4")
_lock = threading.RLock()
_configured: tuple[str, str, float, float] | None = None  # (list url, cache dir, timeouts)

LoreMailbox = b4.LoreMailbox
LoreSeries = b4.LoreSeries
LoreMessage = b4.LoreMessage


class _CuttableAdapter(requests.adapters.HTTPAdapter):
    """Remembers the sockets of the responses being read, so a deadline can cut them.

    A server that trickles a byte now and then never trips a per-read timeout,
    and closing a requests session does not wake a read in flight; shutting
    its socket down does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        resp = super().send(request, *args, **kwargs)
        sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
        if isinstance(sock, socket.socket):
            with self._lock:
                self._socks.append(sock)
        return resp

    def cut(self) -> None:
        """End every read in flight (the b4 lock makes them all ours)."""
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def forget(self) -> None:
        with self._lock:
            self._socks = []


_ADAPTER = _CuttableAdapter()


class ThreadFetchError(LookupError):
    """The list's public-inbox could not be reached or failed; try again later."""


class ThreadNotFound(LookupError):
    """The server does not have the message (yet: lore indexes after the git commit)."""


def b4_home(settings: Settings) -> Path:
    """Where b4's git config, cache and data live (under paths.cache)."""
    return settings.paths.cache / "b4"


def _gitconfig_text(list_url: str) -> str:
    mask = f"{list_url.rstrip('/')}/%s"
    return (
        "[b4]\n"
        f"\tmidmask = {mask}\n"
        f"\tlinkmask = {mask}\n"
        "\tattestation-policy = off\n"
        "\tattestation-check-dkim = no\n"
        "[user]\n"
        "\tname = lorebot\n"
        "\temail = lorebot@localhost\n"
    )


@contextmanager
def _isolated_env(home: Path) -> Iterator[None]:
    """b4's git and XDG environment while b4 reads its configuration.

    os.environ is process-wide: other threads' commands would see these
    variables too, so this only wraps the short (re)configuration step.
    """
    env = {
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def b4_session(settings: Settings, lst: ListSettings) -> Iterator[None]:
    """Hold the b4 lock with b4 configured for `lst` (midmask = the list URL)."""
    global _configured
    home = b4_home(settings)
    with _lock:
        want = (lst.url, str(home), settings.intake.http_timeout, settings.network.connect_timeout)
        if _configured != want:
            _configure(settings, lst, home)
            _configured = want
        yield


def _configure(settings: Settings, lst: ListSettings, home: Path) -> None:
    """Write b4's git config for `lst`, load it, and point b4's lore node at the list."""
    with _isolated_env(home):
        for d in ("cache", "data", "config"):
            (home / d).mkdir(parents=True, exist_ok=True)
        (home / "gitconfig").write_text(_gitconfig_text(lst.url))
        # topdir: an empty directory, so no repository's .b4-config leaks in
        b4.setup_config(argparse.Namespace(config=None), topdir=str(home / "config"))
        b4.LORENODE = liblore.LoreNode(
            lst.url.rstrip("/"),
            # (connect, each read): a server that accepts and never answers is given up
            request_timeout=(settings.network.connect_timeout, settings.intake.http_timeout),
            cache_dir=str(home / "cache" / "lore"),
            follow_upstream=False,
        )
        b4.LORENODE.set_user_agent("b4", b4.__VERSION__)
        session = requests.Session()
        session.headers["User-Agent"] = f"b4/{b4.__VERSION__}"
        session.mount("http://", _ADAPTER)
        session.mount("https://", _ADAPTER)
        b4.LORENODE.set_requests_session(session)
        # b4 reports missing patches and the like as errors; for a poller
        # they are normal (the series waits): keep b4 quiet but for criticals
        b4.logger.setLevel(logging.CRITICAL)


def fetch_thread(settings: Settings, lst: ListSettings, msgid: str) -> list[EmailMessage]:
    """The whole thread that contains `msgid`, as b4 sees it (never cached).

    Bounded twice: each read by intake.http_timeout, the whole fetch by
    network.thread_timeout (then the reads in flight are cut).
    """
    with b4_session(settings, lst):
        node = b4.LORENODE
        assert node is not None
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            node.cancel_active()
            _ADAPTER.cut()  # only our reads are in flight: the b4 lock is held

        deadline = threading.Timer(settings.network.thread_timeout, expire)
        deadline.daemon = True
        deadline.start()
        try:
            msgs = node.get_mbox_by_msgid(msgid, nocache=True)
        except (liblore.LibloreError, OSError) as e:
            if expired.is_set():
                raise ThreadFetchError(
                    f"{lst.name}: fetching the thread of <{msgid}> took over "
                    f"network.thread_timeout = {settings.network.thread_timeout} s"
                ) from e
            if isinstance(e, liblore.RemoteError):
                _raise_not_found(lst, msgid, e)
            raise ThreadFetchError(f"{lst.name}: cannot fetch thread of <{msgid}>: {e}") from e
        finally:
            deadline.cancel()
            _ADAPTER.forget()
        if not msgs:
            raise ThreadNotFound(f"{lst.name}: no thread found for <{msgid}>")
        split = b4.split_and_dedupe_pi_results(msgs)
        thread = b4.get_strict_thread(split, msgid) or split
        return list(thread)


def _raise_not_found(lst: ListSettings, msgid: str, e: liblore.RemoteError) -> None:
    """ThreadNotFound for a 4xx answer (the server does not have it), except 429."""
    if e.status_code is not None and 400 <= e.status_code < 500 and e.status_code != 429:
        raise ThreadNotFound(f"{lst.name}: <{msgid}> not found at {lst.url}") from e


def make_mailbox(msgs: list[EmailMessage]) -> b4.LoreMailbox:
    """A b4 mailbox of the messages; messages b4 refuses (no Message-ID) are dropped."""
    lmbx = b4.LoreMailbox()
    for msg in msgs:
        try:
            lmbx.add_message(msg)
        except ValueError as e:
            log.warning("b4 skipped a message: %s", e)
    _fix_threaded_covers(lmbx)
    return lmbx


def _fix_threaded_covers(lmbx: b4.LoreMailbox) -> None:
    """b4 takes a cover letter sent in reply (a v2 threaded under v1) for a trailer reply
    when its body has a `base-commit:` line; put such covers back."""
    for lmsg in list(lmbx.followups):
        subj = lmsg.lsubject
        if (
            lmsg.reply
            and not subj.reply
            and subj.patch
            and lmsg.counter == 0
            and not lmsg.counters_inferred
            and not lmsg.has_diff
            and lmsg.revision not in lmbx.covers
        ):
            lmbx.followups.remove(lmsg)
            lmsg.reply = False
            lmbx.covers[lmsg.revision] = lmsg


def get_series(
    settings: Settings, lst: ListSettings, lmbx: b4.LoreMailbox, revision: int | None
) -> b4.LoreSeries | None:
    """`LoreMailbox.get_series` (call ONCE per mailbox: it mutates it), without searches."""
    with b4_session(settings, lst):
        # codereview_trailers would search the whole inbox by patch-id; the thread
        # already holds the replies that matter, and a poll should stay local
        return lmbx.get_series(revision, codereview_trailers=False)


def am_ready(settings: Settings, lst: ListSettings, lser: b4.LoreSeries) -> list[EmailMessage]:
    """The present patches in `git am` form, follow-up trailers added, in order."""
    with b4_session(settings, lst):
        return list(lser.get_am_ready(addlink=False, allowbadchars=True))


def as_mbox(msg: EmailMessage) -> bytes:
    """One message as an mbox file `git am` reads."""
    buf = io.BytesIO()
    b4.save_git_am_mbox([msg], buf)
    return buf.getvalue()


def base_commit(lser: b4.LoreSeries) -> str | None:
    """The `base-commit:` the series declares, if any."""
    return lser.base_commit or None


def change_id(lser: b4.LoreSeries) -> str:
    """The series' `change-id:` (b4 prep), "" when none."""
    return lser.change_id or ""


def clean_msgid(msg: EmailMessage, header: str = "Message-ID") -> str:
    """A Message-ID header without brackets, as b4 reads it."""
    return b4.LoreMessage.get_clean_msgid(msg, header=header) or ""


_DIFF_GIT_RE = re.compile(r"^diff --git a/(\S+) b/\S+$")
_INDEX_RE = re.compile(r"^index ([0-9a-f]{7,64})\.\.[0-9a-f]{7,64}")


def preimage_blobs(series: Series) -> dict[str, str]:
    """path -> abbreviated blob id each file had before the series (new files left out)."""
    blobs: dict[str, str] = {}
    for patch in series.patches:
        path = ""
        for line in patch.mbox.decode("utf-8", "replace").splitlines():
            if m := _DIFF_GIT_RE.match(line):
                path = m.group(1)
            elif (m := _INDEX_RE.match(line)) and path:
                if path not in blobs and set(m.group(1)) != {"0"}:
                    blobs[path] = m.group(1)
                path = ""
    return blobs


def guess_base(series: Series, repo: Repo) -> tuple[str, str, str] | None:
    """b4's blob-based base guess, through our runner: (tree, branch, sha) or None.

    A branch tip (refs/trees/<tree>/<branch>) where every preimage blob
    matches wins; otherwise, as b4's find_base does, the commits that last
    touched a mismatching blob (and their parents) are tried.
    """
    blobs = preimage_blobs(series)
    if not blobs:
        return None
    refs = repo.git("for-each-ref", "--format=%(refname)", "refs/trees/", check=False).split()
    tried: set[str] = set()
    for ref in refs:
        tree, _, branch = ref.removeprefix("refs/trees/").partition("/")
        tip = repo.git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False).strip()
        if not tip:
            continue
        missing = _mismatches(repo, tip, blobs)
        if not missing:
            return tree, branch, tip
        for path in missing[:5]:
            full = repo.git(
                "rev-parse", "-q", "--verify", f"{blobs[path]}^{{blob}}", check=False
            ).strip()
            if not full:
                continue
            found = repo.git(
                "log", "-1", "--format=%H", f"--find-object={full}", tip, "--", path, check=False
            ).strip()
            for cand in (found, f"{found}~1") if found else ():
                sha = repo.git(
                    "rev-parse", "-q", "--verify", f"{cand}^{{commit}}", check=False
                ).strip()
                if sha and sha not in tried:
                    tried.add(sha)
                    if not _mismatches(repo, sha, blobs):
                        return tree, branch, sha
    return None


def _mismatches(repo: Repo, commit: str, blobs: dict[str, str]) -> list[str]:
    """Paths whose blob at `commit` is not the patch's preimage."""
    paths = list(blobs)
    r = repo.runner.run(
        ["git", "--git-dir", str(repo.git_dir), "cat-file", "--batch-check"],
        input="".join(f"{commit}:{p}\n" for p in paths),
        name="batch-check",
    )
    lines = r.stdout.splitlines()
    out = []
    for path, line in zip(paths, lines + [""] * (len(paths) - len(lines)), strict=True):
        if not line.startswith(blobs[path]):
            out.append(path)
    return out
