"""Golden mails: each reply as the SMTP server got it, normalized, in tests/golden/replies.

Rewrite them after a deliberate change with LOREBOT_UPDATE_GOLDEN=1, then read
them as their recipient would. Every golden mail must also pass `assert_clean`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "replies"

# what a mail must never carry: run notes, Python reprs, paths of this machine
_NOT_IN_A_MAIL = (
    "not compiled",
    "refused by Kconfig",
    "helpers tried",
    "not found;",
    "toolchain",
    "{'",
    "[('",
    ".cache/lorebot",
)
# lines that may pass 72 columns: diagnostics, excerpts, commands, tags, headers
_QUOTED = (
    " ",
    ">",
    "\t",
    "make ",
    "git ",
    "b4 ",
    "./scripts",
    "CONFIG_",
    "# CONFIG_",
    "Reported-by:",
    "Closes:",
    "@@",
    "+",
    "-",
    "Applying:",
    "error:",
    "Patch failed",
)


def normalized(raw: bytes) -> str:
    """The mail with what changes from run to run (Date, Message-ID, version, the
    loopback archive's port) replaced by placeholders."""
    text = raw.decode("utf-8").replace("\r\n", "\n")
    text = re.sub(r"^Date: .*$", "Date: <date>", text, count=1, flags=re.M)
    text = re.sub(r"<lorebot-[^@>]+@", "<lorebot-MSGID@", text)
    text = re.sub(r"http://127\.0\.0\.1:\d+/", "http://127.0.0.1:<port>/", text)
    return re.sub(r"^X-Lorebot: .*$", "X-Lorebot: <version>", text, count=1, flags=re.M)


def check_golden(name: str, raw: bytes) -> None:
    """The mail equals tests/golden/replies/<name>.eml (rewritten when asked to)."""
    path = GOLDEN / f"{name}.eml"
    text = normalized(raw)
    if os.environ.get("LOREBOT_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}"


def assert_clean(name: str, text: str) -> None:
    """No run notes, no Python repr, no path of a machine, 72 columns (diagnostics,
    excerpts, commands, headers and URLs may be longer)."""
    body = text.split("\n\n", 1)[1]
    for bad in _NOT_IN_A_MAIL:
        assert bad not in body, (name, bad)
    # no absolute path of a machine (URLs are fine: they follow '//')
    assert not re.search(r"(?<![/\w])/(?:[\w.-]+/){2,}", body), name
    for line in body.splitlines():
        quoted = line.startswith(_QUOTED) or re.match(r"^[\w./-]+:\d+(:\d+)?: ", line)
        url = re.match(r"^[\w ]+: \w+://\S+$", line)  # a label and a URL, which cannot wrap
        assert len(line) <= 72 or quoted or url, (name, line)
