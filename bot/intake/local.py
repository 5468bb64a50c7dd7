"""A series from local mail: an mbox (`git format-patch --stdout`, `b4 send -o`), patch
files, or standard input, for a check before the series is posted.

Mails without a Message-ID (git format-patch without --thread) are given one made
from their content, so that checking the same patches again is the same series.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mailbox
import tempfile
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from bot.core.models import Series
from bot.intake.series import SeriesError, assemble_messages
from config.settings import ListSettings, Settings

LOCAL_DOMAIN = "local.lorebot"


def is_local_target(targets: Sequence[str]) -> bool:
    """Whether the command line names local mail (`-`, files) rather than a Message-ID."""
    if len(targets) > 1 or targets[0] == "-":
        return True
    return Path(targets[0]).exists()


def read_mails(data: bytes) -> list[EmailMessage]:
    """The messages of one file: an mbox of several, or one bare message."""
    if not data.startswith(b"From "):
        return [_parse(data)]
    with tempfile.NamedTemporaryFile(suffix=".mbox") as f:
        f.write(data)
        f.flush()
        box = mailbox.mbox(f.name, factory=None, create=False)
        try:
            return [_parse(m.as_bytes()) for m in box]
        finally:
            box.close()


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def with_msgids(msgs: list[EmailMessage]) -> list[EmailMessage]:
    """Every message with a Message-ID (one from its content where it has none)."""
    for i, msg in enumerate(msgs):
        if not msg.get("Message-ID"):
            digest = hashlib.sha256(msg.as_bytes()).hexdigest()[:20]
            msg["Message-ID"] = f"<{digest}-{i}@{LOCAL_DOMAIN}>"
    return msgs


def load_local(
    settings: Settings, lst: ListSettings, targets: Sequence[str], stdin: bytes = b""
) -> Series:
    """The series in the named files or directories (`-`: standard input), assembled as
    intake does."""
    msgs: list[EmailMessage] = []
    for t in targets:
        if t == "-":
            msgs += read_mails(stdin)
            continue
        path = Path(t)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for f in files:  # a directory: its files in name order (`b4 send -o DIR`)
            msgs += read_mails(f.read_bytes())
    if not msgs:
        raise SeriesError("no mail in " + ", ".join(targets))
    return assemble_messages(settings, lst, with_msgids(msgs))


def local_list(settings: Settings, name: str | None) -> ListSettings:
    """The list whose trees and mail policy a local check uses: the named one, the first
    configured one, or one with every configured tree."""
    if name:
        return settings.list_(name)
    if settings.lists:
        return settings.lists[0]
    return ListSettings(name="local", url="", trees=[t.name for t in settings.trees])
