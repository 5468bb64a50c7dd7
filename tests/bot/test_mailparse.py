"""Pure parsing and classification of raw mail."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.intake.mailparse import classify, find_diff, parse_message, parse_subject

BOTS = ["lkp@intel.com", "noreply@", "syzbot"]


def mail(headers: str, body: str = "text\n") -> bytes:
    base = "From: Ann <ann@example.org>\nDate: Tue, 02 May 2023 10:00:00 +0200\n"
    return (base + headers.strip() + "\n\n" + body).encode()


DIFF = (
    "---\n x.c | 1 +\n\ndiff --git a/x.c b/x.c\nindex 1111111..2222222 100644\n"
    "--- a/x.c\n+++ b/x.c\n@@ -1 +1,2 @@\n a\n+b\n"
)


def test_headers_decoded_unfolded() -> None:
    raw = mail(
        "Message-ID: <a@b>\nSubject: =?UTF-8?q?=5BPATCH=5D_iommu=3A_R=C3=BCck?=\n"
        " gabe\nIn-Reply-To: <p@b>\nReferences: <r@b>\n <p@b>\n"
        "To: List <l@x.org>, o@x.org\nCc: =?utf-8?b?SsO2cmc=?= <j@x.org>"
    )
    p = parse_message(raw)
    assert p.msgid == "a@b" and p.malformed == ""
    assert p.subject == "[PATCH] iommu: Rück gabe"
    assert (p.in_reply_to, p.references) == ("p@b", ("r@b", "p@b"))
    assert p.to == ("List <l@x.org>", "o@x.org") and p.cc == ("Jörg <j@x.org>",)
    assert p.date == datetime(2023, 5, 2, 8, 0)
    assert p.author == "Ann <ann@example.org>"


def test_list_mangled_from_uses_original() -> None:
    raw = (
        "From: Jane Doe via Virtualization <virtualization@lists.linux.dev>\n"
        "X-Original-From: Jane Doe <jane@corp.example>\n"
        "Reply-To: Jane Doe <jane@corp.example>\nMessage-ID: <m@x>\nSubject: hi\n\nx\n"
    )
    p = parse_message(raw.encode())
    assert (p.author_name, p.author_email) == ("Jane Doe", "jane@corp.example")
    raw2 = (
        "From: Bob via iommu <iommu@lists.linux.dev>\nReply-To: bob@corp.example\n"
        "Message-ID: <m2@x>\nSubject: hi\n\nx\n"
    )
    p2 = parse_message(raw2.encode())
    assert (p2.author_name, p2.author_email) == ("Bob", "bob@corp.example")


@pytest.mark.parametrize(
    ("subject", "version", "counter", "total", "tags", "title"),
    [
        ("[PATCH v3 mm-unstable 2/7] mm: foo", 3, 2, 7, ("mm-unstable",), "mm: foo"),
        ("[RFC PATCH net-next 0/3] net: bar", 1, 0, 3, ("net-next",), "net: bar"),
        ("[PATCH V2 05/14] x", 2, 5, 14, (), "x"),
        ("[PATCH] [resend] y", 1, None, None, (), "y"),
    ],
)
def test_parse_subject(
    subject: str,
    version: int,
    counter: int | None,
    total: int | None,
    tags: tuple[str, ...],
    title: str,
) -> None:
    info = parse_subject(subject)
    assert (info.version, info.counter, info.total, info.tags, info.title) == (
        version,
        counter,
        total,
        tags,
        title,
    )
    assert info.is_patch and not info.is_reply


@pytest.mark.parametrize(
    ("headers", "body", "kind"),
    [
        ("Message-ID: <1@x>\nSubject: [PATCH 1/2] mm: a", "msg\n" + DIFF, "patch"),
        ("Message-ID: <2@x>\nSubject: [PATCH 0/2] mm: a", "cover\n x.c | 1 +\n", "cover"),
        (
            "Message-ID: <3@x>\nSubject: Re: [PATCH 1/2] mm: a\nIn-Reply-To: <1@x>",
            "> " + DIFF.replace("\n", "\n> ") + "\nReviewed-by: R <r@x>\n",
            "reply",
        ),
        (
            "Message-ID: <4@x>\nSubject: Re: [PATCH 1/2] mm: a\nIn-Reply-To: <1@x>",
            "Try this on top:\n\n" + DIFF,
            "followup",
        ),
        (
            "Message-ID: <5@x>\nSubject: [GIT PULL] virtio fixes for 6.4",
            "are available in the Git repository at:\n",
            "pull",
        ),
        (
            "Message-ID: <6@x>\nSubject: Re: [PATCH] a\nIn-Reply-To: <1@x>\nX-Lorebot: 1",
            "x",
            "robot",
        ),
        ("Message-ID: <7@x>\nSubject: just talk", "hello\n", "other"),
        ("Message-ID: <8@x>\nSubject: mm: plain patch without prefix", "msg\n" + DIFF, "patch"),
    ],
)
def test_classify(headers: str, body: str, kind: str) -> None:
    assert classify(parse_message(mail(headers, body)), BOTS).kind == kind


def test_robots() -> None:
    lkp = (
        b"From: kernel test robot <lkp@intel.com>\nMessage-ID: <r@x>\nSubject: Re: [PATCH] a\n"
        b"\nwarning\n"
    )
    assert classify(parse_message(lkp), []).kind == "robot"
    syz = b"From: syzbot <syzbot+abc@syzkaller.appspotmail.com>\nMessage-ID: <s@x>\nSubject: x\n\n"
    assert classify(parse_message(syz), BOTS).kind == "robot"


def test_malformed_reasons() -> None:
    assert classify(parse_message(b"From: a@b\nSubject: x\n\nbody\n")).reason == "no Message-ID"
    odd = mail("Message-ID: <c@x>\nSubject: x\nContent-Type: text/plain; charset=klingon", "\xe9")
    assert parse_message(odd).malformed == "unknown charset 'klingon'"
    big = mail("Message-ID: <b@x>\nSubject: x", "x" * 2000)
    assert "over the limit of 1000" in parse_message(big, max_bytes=1000).malformed
    mime = mail(
        "Message-ID: <m@x>\nSubject: x\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="B"',
        "--A\n\nno\n",
    )
    assert parse_message(mime).malformed.startswith("broken MIME")
    hdr = mail("Message-ID: <h@x>\nSubject: =?x-unknown?q?abc?=")
    assert parse_message(hdr).malformed.startswith("unknown charset in a header")


def test_find_diff_ignores_quoted() -> None:
    assert find_diff(DIFF)
    assert not find_diff("> " + DIFF.replace("\n", "\n> "))
    assert not find_diff("--- a line of text\nno hunk\n")
