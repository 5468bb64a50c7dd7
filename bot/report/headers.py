"""Who a reply goes to and where it threads: recipients, subject, Message-ID, References.

Pure functions over the patch mails as received (headers unfolded and
decoded, list-mangled From lines undone); `bot.report.render` writes the
bodies and puts them under these headers.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import re
from collections.abc import Iterable, Sequence
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr

from bot.core.models import PatchMail, Series
from config.settings import Settings

_REPLY_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_VIA = re.compile(r"^(?P<name>.*?\S)\s+via\s+\S.*$", re.IGNORECASE)
_FOLD = re.compile(r"\r?\n[ \t]+")
_ONE_ADDR = re.compile(r"^(?P<name>[^@]*?)\s*<(?P<addr>[^<>\s,]+@[^<>\s,]+)>$")


def clean_header(value: str) -> str:
    """A header value as a person reads it: unfolded, RFC 2047 words decoded."""
    value = _FOLD.sub(" ", value or "")
    if "=?" in value:
        with contextlib.suppress(LookupError, UnicodeDecodeError, ValueError):
            value = str(make_header(decode_header(value)))
    return value.strip()


def reply_subject(subject: str) -> str:
    """'Re: <subject as sent>', without doubling an existing 'Re:'."""
    subject = clean_header(subject)
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def bare_msgid(msgid: str) -> str:
    """A Message-ID without angle brackets or spaces."""
    return msgid.strip().strip("<>").strip()


def format_address(name: str, addr: str) -> str:
    """'Name <addr>', quoted where RFC 5322 needs it (non-ASCII stays readable)."""
    try:
        return str(Address(display_name=name, addr_spec=addr))
    except (ValueError, IndexError):
        return f"{name} <{addr}>" if name else addr


def draft_digest(kind: str, target: str, keys: Iterable[str]) -> str:
    """The content key of a reply: what it reports and to which message."""
    text = "\n".join([kind, bare_msgid(target), *sorted(set(keys))])
    return hashlib.sha256(text.encode()).hexdigest()


def recipients(
    patch: PatchMail, settings: Settings, extra_cc: Sequence[str] = ()
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(author's name, To, Cc) for a reply to `patch`."""
    listed = [pair for x in (*patch.to, *patch.cc, *extra_cc) for pair in split_addresses(x)]
    listed_addrs = {a.lower() for _, a in listed}
    name, addr = _author(patch, listed_addrs)
    own = parseaddr(settings.mail.sender)[1].lower()
    if not addr:  # nobody to answer privately: the lists carry it
        to_pairs, listed = listed[:1], listed[1:]
    else:
        to_pairs = [(name, addr)]
    seen = {a.lower() for _, a in to_pairs} | {own}
    cc: list[str] = []
    if settings.mail.cc_lists or not addr:
        for n, a in listed:
            if a.lower() not in seen:
                seen.add(a.lower())
                cc.append(format_address(n, a))
    return name, tuple(format_address(n, a) for n, a in to_pairs), tuple(cc)


def split_addresses(value: str) -> list[tuple[str, str]]:
    """(name, addr) pairs of one To/Cc entry; 'Rödel, Jörg <j@x>' stays one address."""
    value = clean_header(value)
    one = _ONE_ADDR.match(value)
    if one and "<" not in one.group("name"):
        return [(one.group("name").strip().strip('"'), one.group("addr").strip())]
    return [(clean_header(n), a) for n, a in getaddresses([value]) if "@" in a]


def _author(patch: PatchMail, listed: set[str]) -> tuple[str, str]:
    """The patch author to answer: Reply-To, else From, un-mangled if a list rewrote it."""
    name, addr = _first(patch.author)
    addr = addr or patch.author_email
    via = _VIA.match(name)
    if via:
        name = via.group("name").strip().strip('"')
    rname, raddr = _first(patch.reply_to)
    if raddr and raddr.lower() not in listed:
        return rname or name, raddr
    if via:
        if patch.author_email and patch.author_email.lower() != addr.lower():
            return name, patch.author_email
        inbody = _in_body_from(patch.mbox)
        return inbody if inbody[1] else (name, "")
    return name, addr


def _first(value: str) -> tuple[str, str]:
    pairs = split_addresses(value)
    if pairs:
        return pairs[0]
    return clean_header(value).strip('"'), ""


def _in_body_from(mbox: bytes) -> tuple[str, str]:
    """The 'From: Name <addr>' line git puts first in the body when sender != author."""
    if not mbox:
        return "", ""
    msg = email.message_from_bytes(mbox, policy=email.policy.default)
    part = msg.get_body(("plain",)) if msg.is_multipart() else msg
    try:
        text = part.get_content() if part is not None else ""
    except (LookupError, KeyError):
        return "", ""
    for line in str(text).lstrip("\n").splitlines()[:3]:
        if line.startswith("From: "):
            return _first(line[6:])
    return "", ""


def thread_chain(patch: PatchMail) -> tuple[str, ...]:
    """References of a reply to `patch`: its thread, oldest first, then the patch."""
    refs = [bare_msgid(r) for r in patch.references if bare_msgid(r)]
    refs.append(bare_msgid(patch.msgid))
    return tuple(dict.fromkeys(refs))


def series_target(series: Series) -> tuple[str, str, tuple[str, ...]]:
    """(Message-ID, subject, References) of the summary's parent: cover, else patch 1."""
    if series.cover:
        cover = bare_msgid(series.cover)
        first = series.patches[0]
        chain = [bare_msgid(r) for r in first.references]
        refs = chain[: chain.index(cover)] if cover in chain else []
        return cover, series.cover_subject or series.subject, (*refs, cover)
    first = series.patches[0]
    return bare_msgid(first.msgid), first.subject, thread_chain(first)


def series_cc(series: Series) -> list[str]:
    """Everyone the series' later patches went to, for a reply to the whole series."""
    return [a for p in series.patches[1:] for a in (*p.to, *p.cc)]


def reply_msgid(settings: Settings, digest: str) -> str:
    """The reply's Message-ID (without <>), from its content key: a re-render of the same
    report for the same message is the same mail."""
    domain = parseaddr(settings.mail.sender)[1].rpartition("@")[2] or "localhost"
    return f"lorebot-{digest[:24]}@{domain}"
