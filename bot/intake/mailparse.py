"""Parse one raw mail into a frozen `ParsedMessage` and classify it (pure functions).

Nothing here touches the network, the disk or the database: the intake shell
feeds raw bytes in and records what comes out.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from bot.core.diff import HUNK

_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_PREFIX_RE = re.compile(r"^\s*\[([^\]]*)\]\s*")
_REPLY_RE = re.compile(r"^\s*(re|aw|sv|antw|fwd?)\s*:", re.IGNORECASE)
_COUNTER_RE = re.compile(r"^(\d+)/(\d+)$")
_VERSION_RE = re.compile(r"^v(\d+)$", re.IGNORECASE)
_DIFF_START_RE = re.compile(r"^(diff --git |Index: |--- (a/|/dev/null|\S+\s))", re.MULTILINE)
_PULL_BODY_RE = re.compile(
    r"are available in the Git repository at:|for you to fetch changes up to", re.IGNORECASE
)
_VIA_RE = re.compile(r"\s+via\s+\S+", re.IGNORECASE)
_PATCH_WORDS = {"patch", "rfc", "resend"}
HEADER_BYTES = 64 * 1024  # the most of an oversize mail's head parsed for its headers


@dataclass(frozen=True)
class ParsedMessage:
    """What lorebot needs from one mail. `malformed` holds a reason, else ""."""

    msgid: str
    subject: str = ""
    author_name: str = ""
    author_email: str = ""
    date: datetime | None = None
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: str = ""
    body: str = ""
    has_diff: bool = False
    x_lorebot: bool = False
    malformed: str = ""
    oversize: bool = False  # over the size limit: only the headers were parsed
    size: int = 0  # bytes of the whole raw mail

    @property
    def author(self) -> str:
        """'Name <addr>' (or just the address)."""
        if self.author_name and self.author_email:
            return f"{self.author_name} <{self.author_email}>"
        return self.author_email or self.author_name


@dataclass(frozen=True)
class SubjectInfo:
    """The [PATCH ...] prefix of a subject, decoded."""

    is_reply: bool
    is_patch: bool  # a PATCH/RFC/RESEND prefix is present
    is_pull: bool
    version: int
    counter: int | None
    total: int | None
    tags: tuple[str, ...]  # prefix words other than PATCH/RFC/RESEND/vN/n/m
    title: str  # the subject without "Re:" and bracket prefixes


def decode_header_text(value: str | None) -> str:
    """RFC 2047-decode and unfold a header value; raises LookupError on unknown charsets."""
    if value is None:
        return ""
    text = str(make_header(decode_header(str(value))))
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def parse_msgids(value: str) -> tuple[str, ...]:
    """Message-IDs (without angle brackets) in header order, deduplicated."""
    seen: list[str] = []
    for mid in _MSGID_RE.findall(value or ""):
        if mid not in seen:
            seen.append(mid)
    return tuple(seen)


def parse_subject(subject: str) -> SubjectInfo:
    """Split '[PATCH v2 mm-unstable 3/5] mm: foo' into version, counter, tags and title."""
    rest = subject.strip()
    is_reply = False
    while True:
        m = _REPLY_RE.match(rest)
        if not m:
            break
        is_reply = True
        rest = rest[m.end() :].lstrip()
    words: list[str] = []
    while (m := _PREFIX_RE.match(rest)) is not None:
        words.extend(m.group(1).replace(",", " ").split())
        rest = rest[m.end() :]
        if (r := _REPLY_RE.match(rest)) is not None:
            is_reply = True
            rest = rest[r.end() :].lstrip()
    version, counter, total = 1, None, None
    tags: list[str] = []
    is_patch = is_pull = False
    lowered = [w.lower() for w in words]
    for word, low in zip(words, lowered, strict=True):
        if low in _PATCH_WORDS or low.startswith("patch"):
            is_patch = True
        elif (v := _VERSION_RE.match(word)) is not None:
            version = int(v.group(1))
        elif (c := _COUNTER_RE.match(word)) is not None:
            counter, total = int(c.group(1)), int(c.group(2))
        elif low in ("git", "pull"):
            is_pull = is_pull or ("git" in lowered and "pull" in lowered)
        else:
            tags.append(word)
    return SubjectInfo(
        is_reply, is_patch, is_pull, version, counter, total, tuple(tags), rest.strip()
    )


def normalize_title(title: str) -> str:
    """A title for matching revisions: lower case, single spaces."""
    return " ".join(title.lower().split())


def find_diff(body: str) -> bool:
    """True when the body carries an unquoted diff with at least one hunk."""
    return bool(_DIFF_START_RE.search(body) and any(HUNK.match(line) for line in body.splitlines()))


def parse_message(
    raw: bytes, max_bytes: int = 20 * 1024 * 1024, size: int | None = None
) -> ParsedMessage:
    """Parse raw mail bytes; problems give a ParsedMessage with `malformed` set, never raise.

    `size` is the mail's whole size when `raw` is only its head. A mail over
    `max_bytes` is refused before its body is parsed: only its headers are read
    (for the record), so its cost does not grow with its size.
    """
    size = len(raw) if size is None else size
    if size > max_bytes:
        return _replace(_parse_oversize(raw, size, max_bytes), size=size)
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as e:  # the parser is lenient; this is a last resort
        return ParsedMessage(msgid="", malformed=f"cannot parse mail: {e}", size=size)
    mids = parse_msgids(str(msg.get("Message-ID", "")))
    msgid = mids[0] if mids else ""
    try:
        parsed = _parse_fields(msg, msgid)
    except LookupError as e:
        return ParsedMessage(
            msgid=msgid,
            subject=_safe_subject(msg),
            malformed=f"unknown charset in a header: {e}",
            size=size,
        )
    problem = ""
    if not msgid:
        problem = "no Message-ID"
    else:
        body, problem = _body_text(msg)
        parsed = _replace(parsed, body=body, has_diff=find_diff(body))
    return _replace(parsed, malformed=problem, size=size)


def _parse_oversize(raw: bytes, size: int, max_bytes: int) -> ParsedMessage:
    """The headers of a mail too big to take in, with the reason it is refused."""
    reason = f"message is {size} bytes, over the limit of {max_bytes}"
    end = min((i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if i >= 0), default=-1)
    head = raw[: end + 1] if end >= 0 else raw[:HEADER_BYTES]
    try:
        msg = email.message_from_bytes(head[:HEADER_BYTES], policy=email.policy.compat32)
        mids = parse_msgids(str(msg.get("Message-ID", "")))
        parsed = _parse_fields(msg, mids[0] if mids else "")
    except Exception:  # headers too broken to read: the size is reason enough
        return ParsedMessage(msgid="", malformed=reason, oversize=True)
    return _replace(parsed, malformed=reason, oversize=True)


def _replace(p: ParsedMessage, **changes: object) -> ParsedMessage:
    from dataclasses import replace

    return replace(p, **changes)  # type: ignore[arg-type]


def _safe_subject(msg: Message) -> str:
    return " ".join(str(msg.get("Subject", "")).split())


def _parse_fields(msg: Message, msgid: str) -> ParsedMessage:
    name, addr = parseaddr(decode_header_text(msg.get("From")))
    if _is_list_mangled(name):
        for header in ("X-Original-From", "Reply-To"):
            oname, oaddr = parseaddr(decode_header_text(msg.get(header)))
            if oaddr and oaddr.lower() != addr.lower():
                name, addr = oname or _VIA_RE.sub("", name), oaddr
                break
    date = None
    if msg.get("Date"):
        try:
            date = parsedate_to_datetime(str(msg["Date"]))
            date = date.astimezone(UTC).replace(tzinfo=None) if date.tzinfo else date
        except (TypeError, ValueError, IndexError):
            date = None
    irt = parse_msgids(str(msg.get("In-Reply-To", "")))
    refs = list(parse_msgids(" ".join(str(v) for v in msg.get_all("References", []))))
    if irt and irt[0] not in refs:
        refs.append(irt[0])
    return ParsedMessage(
        msgid=msgid,
        subject=decode_header_text(msg.get("Subject")),
        author_name=name.strip(),
        author_email=addr.strip().lower(),
        date=date,
        in_reply_to=irt[0] if irt else "",
        references=tuple(r for r in refs if r != msgid),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        reply_to=decode_header_text(msg.get("Reply-To")),
        x_lorebot=msg.get("X-Lorebot") is not None,
    )


def _is_list_mangled(name: str) -> bool:
    """DMARC mitigation rewrites From to 'X via List <list@...>'."""
    return " via " in f" {name} ".lower()


def _addresses(msg: Message, header: str) -> tuple[str, ...]:
    values = [decode_header_text(v) for v in msg.get_all(header, [])]
    out = []
    for name, addr in getaddresses(values):
        if addr:
            out.append(f"{name} <{addr}>" if name else addr)
    return tuple(out)


def _body_text(msg: Message) -> tuple[str, str]:
    """The text/plain parts joined; ("", reason) when the MIME structure is broken."""
    if msg.defects and any(
        type(d).__name__
        in (
            "StartBoundaryNotFoundDefect",
            "MultipartInvariantViolationDefect",
            "CloseBoundaryNotFoundDefect",
            "NoBoundaryInMultipartDefect",
        )
        for d in msg.defects
    ):
        names = ", ".join(sorted({type(d).__name__ for d in msg.defects}))
        return "", f"broken MIME: {names}"
    texts: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            if part.defects:
                names = ", ".join(sorted({type(d).__name__ for d in part.defects}))
                return "", f"broken MIME: {names}"
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/x-patch", "text/x-diff") and texts:
            continue
        if not ctype.startswith("text/"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "us-ascii"
        try:
            codecs.lookup(charset)
        except LookupError:
            return "", f"unknown charset {charset!r}"
        texts.append(payload.decode(charset, "replace"))
    return "\n".join(texts), ""


@dataclass(frozen=True)
class Classification:
    kind: str
    reason: str = ""


def classify(p: ParsedMessage, bot_senders: Sequence[str] = ()) -> Classification:
    """Decide what a mail is: patch, cover, reply, followup, pull, robot, other or malformed."""
    if p.malformed:
        return Classification("malformed", p.malformed)
    sender = f"{p.author_name} <{p.author_email}>".lower()
    if p.x_lorebot:
        return Classification("robot", "lorebot's own mail")
    if "kernel test robot" in sender:
        return Classification("robot", "kernel test robot")
    for bot in bot_senders:
        if bot and bot.lower() in sender:
            return Classification("robot", f"bot sender {bot}")
    info = parse_subject(p.subject)
    if info.is_pull or (_PULL_BODY_RE.search(p.body) and not p.has_diff):
        return Classification("pull", "pull request")
    if info.is_reply or (p.in_reply_to and not info.is_patch and not p.has_diff):
        if p.has_diff:
            return Classification("followup", "reply with an inline patch")
        return Classification("reply")
    if info.is_patch and info.counter == 0:
        return Classification("cover")
    if p.has_diff:
        return Classification("patch")
    if info.is_patch:
        return Classification("other", "patch subject without a diff")
    return Classification("other")
