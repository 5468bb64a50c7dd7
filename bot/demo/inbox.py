"""A local public-inbox v2 inbox served by public-inbox-httpd on loopback.

Used by `lorebot demo` (offline, on embedded defaults) and by the tests:
`PublicInboxServer` creates the inbox with its own PI_CONFIG, imports mail,
and serves it; `stop()`/`start()` simulate an outage.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from bot.core.runner import Runner

IMPORT_MBOX = (
    "use PublicInbox::Config; use PublicInbox::InboxWritable;"
    "my $cfg = PublicInbox::Config->new;"
    "my $ibx = $cfg->lookup_name($ARGV[0]) or die qq(no inbox $ARGV[0]\\n);"
    "PublicInbox::InboxWritable->new($ibx)->import_mbox(\\*STDIN, q(mboxrd));"
)


def have_public_inbox() -> bool:
    return all(shutil.which(c) for c in ("public-inbox-init", "public-inbox-httpd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mboxrd(messages: Iterable[bytes]) -> bytes:
    """Messages as one mboxrd file (">From " quoting)."""
    out = bytearray()
    for raw in messages:
        out += b"From mboxrd@z Thu Jan  1 00:00:00 1970\n"
        for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
            if line.lstrip(b">").startswith(b"From "):
                line = b">" + line
            out += line + b"\n"
        if not raw.endswith(b"\n"):
            out += b"\n"
    return bytes(out)


class PublicInboxServer:
    """One v2 inbox (`name`) served over HTTP at `self.url`."""

    def __init__(
        self,
        root: Path,
        name: str = "test",
        address: str = "test@lists.example.org",
        indexlevel: str = "basic",
    ):
        self.root = root
        self.name = name
        self.address = address
        self.port = free_port()
        self.inbox_dir = root / "inboxes" / name
        self.env = {
            "PI_CONFIG": str(root / "config"),
            "PI_EMERGENCY": str(root / "emergency"),
            "HOME": str(root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(root / "gitconfig"),
        }
        root.mkdir(parents=True, exist_ok=True)
        (root / "gitconfig").write_text(
            "[user]\n\tname = pi\n\temail = pi@example.org\n[safe]\n\tdirectory = *\n"
        )
        self.runner = Runner(env=self.env)
        self._proc: subprocess.Popen[bytes] | None = None
        self.runner.run(
            ["public-inbox-init", "-V2", "-L", indexlevel, name, self.inbox_dir, self.url, address],
            check=True,
            name="pi-init",
        )
        self.runner.run(
            ["git", "config", "-f", self.env["PI_CONFIG"], "publicinboxmda.spamcheck", "none"],
            check=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.name}"

    @property
    def epoch0(self) -> Path:
        return self.inbox_dir / "git" / "0.git"

    # -- mail ---------------------------------------------------------------
    def post_many(self, messages: Iterable[bytes]) -> None:
        """Import messages (indexed, visible to b4) in one step."""
        data = mboxrd(messages)
        self.runner.run(
            ["perl", "-e", IMPORT_MBOX, self.name],
            input=data,
            check=True,
            name="pi-import",
            timeout=900,
        )

    def deliver(self, raw: bytes) -> None:
        """Deliver one message the way a list does, with public-inbox-mda."""
        self.runner.run(
            ["public-inbox-mda", "--no-precheck"],
            input=raw,
            check=True,
            env={"ORIGINAL_RECIPIENT": self.address},
            name="pi-mda",
        )

    def post(self, raw: bytes) -> None:
        self.post_many([raw])

    def head(self) -> str:
        r = self.runner.run(
            [
                "git",
                "--git-dir",
                str(self.epoch0),
                "rev-parse",
                "-q",
                "--verify",
                "refs/heads/master",
            ]
        )
        return r.stdout.strip() if r.ok else ""

    # -- server -------------------------------------------------------------
    def start(self) -> None:
        if self._proc:
            return
        out = self.root / "httpd.out"
        err = self.root / "httpd.err"
        self._proc = self.runner.spawn(
            [
                "public-inbox-httpd",
                "-W0",
                "-l",
                f"127.0.0.1:{self.port}",
                "-1",
                str(out),
                "-2",
                str(err),
            ],
            name="pi-httpd",
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_/text/config/raw", timeout=2):
                    return
            except OSError:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"public-inbox-httpd died: {err.read_text()}") from None
                time.sleep(0.05)
        raise RuntimeError("public-inbox-httpd did not answer within 20 s")

    def stop(self) -> None:
        if not self._proc:
            return
        Runner.stop(self._proc)
        self._proc = None
