"""Every shape of message URL lore serves names the same Message-ID (a table)."""

from __future__ import annotations

import pytest

from bot.intake.target import bare_msgid, parse_lore_url, resolve
from bot.web.queries import clean_msgid
from config.settings import load_settings

MID = "20241107.1234-2-dev@example.org"
SLASHED = "abc/def+x=y@host.example"  # a Message-ID with characters lore escapes

SHAPES = [
    # (argument, inbox URL, Message-ID)
    (f"https://lore.kernel.org/linux-mm/{MID}/", "https://lore.kernel.org/linux-mm", MID),
    (f"https://lore.kernel.org/linux-mm/{MID}", "https://lore.kernel.org/linux-mm", MID),
    (f"https://lore.kernel.org/linux-mm/{MID}/T/#t", "https://lore.kernel.org/linux-mm", MID),
    (f"https://lore.kernel.org/linux-mm/{MID}/T/#u", "https://lore.kernel.org/linux-mm", MID),
    (f"https://lore.kernel.org/linux-mm/{MID}/t/", "https://lore.kernel.org/linux-mm", MID),
    (f"https://lore.kernel.org/linux-mm/{MID}/#r", "https://lore.kernel.org/linux-mm", MID),
    (f"https://lore.kernel.org/linux-mm/{MID}/raw", "https://lore.kernel.org/linux-mm", MID),
    (
        f"https://lore.kernel.org/linux-mm/{MID}/t.mbox.gz",
        "https://lore.kernel.org/linux-mm",
        MID,
    ),
    (f"https://lore.kernel.org/all/{MID}/", "https://lore.kernel.org/all", MID),
    (f"https://lore.kernel.org/all/{MID}/T/#m0a1b", "https://lore.kernel.org/all", MID),
    (f"https://lore.kernel.org/r/{MID}", "https://lore.kernel.org/all", MID),
    (f"https://lore.kernel.org/r/{MID}/", "https://lore.kernel.org/all", MID),
    (f"https://lore.kernel.org/{MID}/", "https://lore.kernel.org/all", MID),
    (f"https://patch.msgid.link/{MID}", "https://lore.kernel.org/all", MID),
    (
        "https://lore.kernel.org/linux-mm/20241107.1234-2-dev%40example.org/",
        "https://lore.kernel.org/linux-mm",
        MID,
    ),
    (
        "https://lore.kernel.org/linux-mm/abc%2Fdef%2Bx%3Dy%40host.example/T/#t",
        "https://lore.kernel.org/linux-mm",
        SLASHED,
    ),
    (f"https://lore.kernel.org/linux-mm/<{MID}>/", "https://lore.kernel.org/linux-mm", MID),
    (
        f"https://lore.kernel.org/linux-mm/%3C{MID}%3E/",
        "https://lore.kernel.org/linux-mm",
        MID,
    ),
    (f"HTTP://LORE.kernel.org/linux-mm/{MID}/", "http://LORE.kernel.org/linux-mm", MID),
    (f"http://127.0.0.1:18080/test/{MID}/", "http://127.0.0.1:18080/test", MID),
]


@pytest.mark.parametrize(("arg", "inbox", "msgid"), SHAPES)
def test_lore_url_shapes(arg: str, inbox: str, msgid: str) -> None:
    assert parse_lore_url(arg) == (inbox, msgid)
    assert bare_msgid(arg) == msgid
    assert clean_msgid(arg) == msgid


@pytest.mark.parametrize(
    "arg", [MID, f"<{MID}>", f"id:{MID}", f" <{MID}> ", MID.replace("@", "%40")]
)
def test_bare_message_ids(arg: str) -> None:
    assert bare_msgid(arg) == MID


def test_resolve_picks_the_configured_list_or_all() -> None:
    settings = load_settings(
        None, lists=[{"name": "linux-mm", "url": "https://lore.kernel.org/linux-mm/"}], trees=[]
    )
    for arg, inbox, msgid in SHAPES:
        lst, mid = resolve(settings, arg)
        assert mid == msgid
        if inbox.lower() == "https://lore.kernel.org/linux-mm":
            assert lst.name == "linux-mm"
        else:
            assert lst.url == inbox
