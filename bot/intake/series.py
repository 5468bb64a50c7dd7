"""Assemble a series from its thread: the revision that holds a message, as `Series`.

The thread comes from the list's public-inbox through `bot.b4adapter`; b4 sorts
revisions, finds the cover letter and collects follow-up trailers. A reply that
carries a whole inline patch (a follow-up) becomes a one-patch series whose
`parent` is the series it goes on top of.
"""

from __future__ import annotations

import logging
import re
import weakref
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from bot.core.models import PatchMail, Series
from bot.intake import b4adapter
from bot.intake.mailparse import (
    ParsedMessage,
    classify,
    normalize_title,
    parse_message,
    parse_subject,
)
from config.settings import ListSettings, Settings

log = logging.getLogger("lorebot.series")
_INBODY_RE = re.compile(r"^(From|Subject): .+$", re.MULTILINE)
_SCISSORS_RE = re.compile(r"^[ \t]*(-- ?>8 ?--|-+ ?8< ?-+|-+ ?>8 ?-+)[^\n]*\n", re.MULTILINE)
_ATTRIBUTION_RE = re.compile(r"^On .* wrote:\s*$")


class SeriesError(LookupError):
    """No series could be assembled for a message (it is recorded with this reason)."""


class SeriesTooBig(SeriesError):
    """A series over the intake bounds (a patch too big, too many patches): skipped with
    the reason, before b4 makes `git am` mail of it."""

    def __init__(
        self, reason: str, msgid: str, subject: str, author: str, covered: tuple[str, ...]
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.msgid = msgid  # the series' key: its cover, else its first patch
        self.subject = subject
        self.author = author
        self.covered = covered  # the cover and patches of the refused revision


def is_followup(series: Series) -> bool:
    """A patch sent in a reply (it has a parent, or its parent thread was not found)."""
    return series.parent is not None or parse_subject(series.subject).is_reply


def series_key(series: Series) -> str:
    """Revision family: the change-id if any, else author + normalized title."""
    if is_followup(series):
        return f"followup:{series.msgid}"
    if series.change_id:
        return f"change-id:{series.change_id}"
    title = parse_subject(series.cover_subject or series.subject).title
    return f"{series.author_email.lower()}|{normalize_title(title)}"


def load_series(settings: Settings, lst: ListSettings, msgid: str) -> Series:
    """The series revision containing `msgid` (cover, patch, follow-up or a reply to one)."""
    msgid = msgid.strip().strip("<>")
    thread = b4adapter.fetch_thread(settings, lst, msgid)
    by_id = {b4adapter.clean_msgid(m): m for m in thread}
    target = by_id.get(msgid)
    if target is None:
        raise b4adapter.ThreadNotFound(f"<{msgid}> is not in the thread the list returned")
    parsed = _parse(target)
    kind = classify(parsed, settings.intake.bot_senders).kind
    if kind == "followup":
        parent_id = _patch_upthread(parsed, by_id, settings)
        others = [m for mid, m in by_id.items() if mid != msgid]
        parent = None
        if parent_id:
            try:
                parent = _assemble(settings, lst, others, parent_id)
            except SeriesError as e:
                log.warning("follow-up <%s>: parent series not assembled: %s", msgid, e)
        return _followup_series(parsed, parent)
    if kind == "reply":
        up = _patch_upthread(parsed, by_id, settings)
        if not up:
            raise SeriesError(f"<{msgid}> is a reply to no patch")
        msgid = up
    return _assemble(settings, lst, thread, msgid)


_parsed: weakref.WeakKeyDictionary[EmailMessage, ParsedMessage] = weakref.WeakKeyDictionary()


def load_target(
    settings: Settings, target: str, list_name: str | None = None
) -> tuple[ListSettings, Series, Series | None]:
    """The list, the series and a follow-up's parent for a Message-ID or lore URL.

    Raises TargetError or LookupError with a message for the user.
    """
    from bot.intake.target import resolve

    lst, msgid = resolve(settings, target, list_name)
    series, parent = load_with_parent(settings, lst, msgid)
    return lst, series, parent


def load_with_parent(
    settings: Settings, lst: ListSettings, msgid: str
) -> tuple[Series, Series | None]:
    """The series containing `msgid` and, for a follow-up, the series it goes on top of."""
    series = load_series(settings, lst, msgid)
    parent = load_series(settings, lst, series.parent) if series.parent else None
    return series, parent


def _parse(msg: EmailMessage) -> ParsedMessage:
    """Our parse of a message b4 fetched (kept while the message lives: a thread is
    looked at several times)."""
    if (hit := _parsed.get(msg)) is not None:
        return hit
    try:
        raw = msg.as_bytes()
    except (UnicodeError, LookupError, ValueError):
        raw = bytes(msg.as_string(), "utf-8", "replace")
    # the default bound only spares the parse of a body no series can use; the
    # intake's own bounds are checked on `size`
    _parsed[msg] = parsed = parse_message(raw)
    return parsed


def _patch_upthread(
    parsed: ParsedMessage, by_id: dict[str, EmailMessage], settings: Settings
) -> str:
    """The nearest ancestor that is a patch or a cover letter, else ""."""
    chain = [parsed.in_reply_to] if parsed.in_reply_to else []
    chain += [r for r in reversed(parsed.references) if r not in chain]
    for mid in chain:
        msg = by_id.get(mid)
        if msg is None:
            continue
        kind = classify(_parse(msg), settings.intake.bot_senders).kind
        if kind in ("patch", "cover"):
            return mid
    return ""


def _assemble(
    settings: Settings, lst: ListSettings, thread: list[EmailMessage], msgid: str
) -> Series:
    # a reply carrying a patch is checked on its own; its Signed-off-by is no trailer
    lmbx = b4adapter.make_mailbox(
        [m for m in thread if classify(_parse(m), settings.intake.bot_senders).kind != "followup"]
    )
    revision = None
    for rev, candidate in lmbx.series.items():
        if any(p is not None and p.msgid == msgid for p in candidate.patches):
            revision = rev
    for rev, cov in lmbx.covers.items():
        if cov.msgid == msgid:
            revision = rev
    if revision is None:
        if not lmbx.series:
            raise SeriesError(f"b4 found no patches in the thread of <{msgid}>")
        # e.g. a cover letter without "0/N": the thread's latest revision
        revision = max(lmbx.series)
    lser = b4adapter.get_series(settings, lst, lmbx, revision)
    if lser is None:
        raise SeriesError(f"b4 could not assemble revision {revision} of <{msgid}>")
    _check_bounds(settings, lser)  # before am_ready: b4's `git am` mail is quadratic
    am = b4adapter.am_ready(settings, lst, lser)
    present: list[tuple[int, b4adapter.LoreMessage]] = [
        (i, p) for i, p in enumerate(lser.patches) if i > 0 and p is not None
    ]
    if not present:
        raise SeriesError(f"revision {revision} of <{msgid}> has no patches")
    if len(am) != len(present):
        raise SeriesError(f"b4 made {len(am)} am-ready patches of {len(present)} for <{msgid}>")
    patches = tuple(_patch_mail(i, lmsg, m) for (i, lmsg), m in zip(present, am, strict=True))
    cover: b4adapter.LoreMessage | None = lser.patches[0] if lser.has_cover else None
    first: b4adapter.LoreMessage = cover if cover is not None else present[0][1]
    subject = first.full_subject
    first_author = _parse(first.msg)
    return Series(
        msgid=first.msgid,
        subject=subject,
        version=lser.revision,
        total=lser.expected,
        complete=bool(lser.complete),
        cover=cover.msgid if cover else None,
        cover_subject=cover.full_subject if cover else "",
        base_commit=b4adapter.base_commit(lser),
        author=first_author.author,
        author_email=first_author.author_email,
        subject_tags=parse_subject(subject).tags,
        change_id=b4adapter.change_id(lser),
        patches=patches,
        missing=tuple(
            i
            for i in range(1, lser.expected + 1)
            if i >= len(lser.patches) or lser.patches[i] is None
        ),
    )


def _check_bounds(settings: Settings, lser: b4adapter.LoreSeries) -> None:
    """SeriesTooBig when the revision has too many patches or a patch too big."""
    bounds = settings.intake
    messages = [p for p in lser.patches if p is not None]
    if not messages:
        return
    first = messages[0]
    covered = tuple(p.msgid for p in messages)
    reason = ""
    if lser.expected > bounds.max_patches:
        reason = f"{lser.expected} patches, over intake.max_patches = {bounds.max_patches}"
    for i, p in enumerate(lser.patches):
        size = _parse(p.msg).size if p is not None else 0
        if not reason and size > bounds.max_patch_bytes:
            reason = (
                f"patch {i}/{lser.expected} is {size} bytes, "
                f"over intake.max_patch_bytes = {bounds.max_patch_bytes}"
            )
    if reason:
        author = _parse(first.msg).author or first.fromemail or ""
        raise SeriesTooBig(reason, first.msgid, first.full_subject, author, covered)


def _who(name: str, addr: str) -> str:
    return f"{name} <{addr}>" if name and name != addr else addr


def _patch_mail(index: int, lmsg: b4adapter.LoreMessage, am: EmailMessage) -> PatchMail:
    parsed = _parse(lmsg.msg)
    if parsed.author_email and parsed.author_email != (lmsg.fromemail or "").lower():
        # the list rewrote From ("X via List"): the patch's author is the original sender
        am.replace_header("From", formataddr((parsed.author_name, parsed.author_email)))
    trailers = [t.as_string() for t in lmsg.followup_trailers]
    return PatchMail(
        index=index,
        msgid=lmsg.msgid,
        subject=lmsg.full_subject,
        title=lmsg.subject,
        author=parsed.author or _who(lmsg.fromname, lmsg.fromemail),
        author_email=parsed.author_email or (lmsg.fromemail or "").lower(),
        date=lmsg.date.isoformat() if lmsg.date else "",
        mbox=b4adapter.as_mbox(am),
        references=(*lmsg.references, lmsg.msgid),
        to=parsed.to,
        cc=parsed.cc,
        reply_to=parsed.reply_to,
        trailers=tuple(dict.fromkeys(trailers)),
    )


def followup_body(body: str) -> str:
    """The patch part of a reply: from in-body headers or a scissors line, else unquoted text."""
    m = _SCISSORS_RE.search(body)
    if m:
        return body[m.end() :].lstrip("\n")
    m = _INBODY_RE.search(body)
    if m and "\n---" in body[m.start() :]:
        return body[m.start() :]
    lines = [
        ln for ln in body.split("\n") if not ln.startswith(">") and not _ATTRIBUTION_RE.match(ln)
    ]
    return "\n".join(lines).strip("\n") + "\n"


def _followup_series(p: ParsedMessage, parent: Series | None) -> Series:
    body = followup_body(p.body)
    m = re.match(r"(?:From: .*\n)?Subject: (.+)\n", body)
    title = m.group(1).strip() if m else parse_subject(p.subject).title
    date = format_datetime(p.date) if p.date else ""
    head = (
        f"From lorebot Thu Jan  1 00:00:00 1970\nFrom: {p.author}\nDate: {date}\n"
        f"Subject: [PATCH] {title}\nMessage-ID: <{p.msgid}>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n"
    )
    patch = PatchMail(
        index=1,
        msgid=p.msgid,
        subject=p.subject,
        title=title,
        author=p.author,
        author_email=p.author_email,
        date=p.date.isoformat() if p.date else "",
        mbox=(head + body).encode(),
        references=(*p.references, p.msgid),
        to=p.to,
        cc=p.cc,
        reply_to=p.reply_to,
    )
    return Series(
        msgid=p.msgid,
        subject=p.subject,
        version=1,
        total=1,
        complete=True,
        parent=parent.msgid if parent else None,
        author=p.author,
        author_email=p.author_email,
        subject_tags=parent.subject_tags if parent else (),
        patches=(patch,),
    )


def assemble_messages(settings: Settings, lst: ListSettings, msgs: list[EmailMessage]) -> Series:
    """The series in a set of mails that did not come from the list (a local mbox or
    patch files): the revision of its cover letter, else of its first patch."""
    kinds = [(classify(_parse(m), settings.intake.bot_senders).kind, m) for m in msgs]
    first = next((m for k, m in kinds if k == "cover"), None) or next(
        (m for k, m in kinds if k == "patch"), None
    )
    if first is None:
        raise SeriesError("no patch in the mails given")
    return _assemble(settings, lst, msgs, b4adapter.clean_msgid(first))
