"""Pure parts of sending: the message itself, and who may be mailed when.

The mailer (bot/mail) asks these functions and records their answers; they
read no clock, database or network themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses, parseaddr

from bot.core.states import SeriesState
from bot.report.render import ReplyDraft
from config.settings import ListSettings, MailSettings

MAX_LINE = 990  # RFC 5321 allows 998 octets per line; keep a margin


def sender_domain(sender: str) -> str:
    """The domain of the bot's own address, for its Message-IDs."""
    addr = parseaddr(sender)[1]
    return addr.rpartition("@")[2] or "localhost"


def message_id(sender: str, now: datetime, token: str) -> str:
    """A new Message-ID (without <>): 'lorebot-20261128T050000-<token>@<sender's host>'."""
    return f"lorebot-{now:%Y%m%dT%H%M%S}-{token}@{sender_domain(sender)}"


class _Policy(EmailPolicy):
    """SMTP policy, but an ASCII Subject folds at spaces like git send-email's.

    The stdlib folder moves a long Subject whole onto a continuation line
    ("Subject:\\n Re: ..."), which some readers show with a leading space.
    """

    def fold(self, name: str, value: str) -> str:
        text = str(value)
        if name.lower() == "subject" and text.isascii():
            return fold_ascii(name, text, self.max_line_length or 78, self.linesep) + self.linesep
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        text = str(value)
        if name.lower() == "subject" and text.isascii():
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy(linesep="\r\n")


def fold_ascii(name: str, text: str, width: int, linesep: str = "\r\n") -> str:
    """'Name: text' folded at spaces so that lines stay within `width` where they can."""
    words = text.split(" ")
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > width and lines[-1].strip():
            lines.append(f" {word}")
        else:
            lines[-1] += f" {word}"
    return linesep.join(lines)


def build_message(
    draft: ReplyDraft, msgid: str, sender: str, date: datetime, version: str
) -> EmailMessage:
    """The mail for a draft: threaded headers, RFC 2047 names and subject, plain text body."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = ", ".join(draft.to) if draft.to else "undisclosed-recipients:;"
    if draft.cc:
        msg["Cc"] = ", ".join(draft.cc)
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{msgid}>"
    msg["In-Reply-To"] = f"<{draft.in_reply_to}>"
    if draft.references:
        msg["References"] = " ".join(f"<{r}>" for r in draft.references)
    msg["X-Lorebot"] = version
    msg["Auto-Submitted"] = "auto-generated"
    body = draft.body
    lines = body.splitlines()
    if any(len(line.encode()) > MAX_LINE for line in lines):
        cte = "quoted-printable"
    else:
        cte = "7bit" if body.isascii() else "8bit"
    msg.set_content(body, charset="utf-8", cte=cte)
    return msg


def envelope_recipients(to: Iterable[str], cc: Iterable[str]) -> list[str]:
    """The bare addresses of To and Cc, each once, in order."""
    out: dict[str, None] = {}
    for _, addr in getaddresses([*to, *cc]):
        if addr and addr.lower() not in {a.lower() for a in out}:
            out[addr] = None
    return list(out)


def mute_reason(
    to: Sequence[str], cc: Sequence[str], mute: Sequence[str], lists: Sequence[ListSettings]
) -> str:
    """Why a reply must not go out because someone opted out, or ''.

    An entry with '@' is an address ('@domain' matches a whole domain); one
    without is a list name (from the settings, or the local part of an address).
    """
    addrs = [a.lower() for a in envelope_recipients(to, cc)]
    author = addrs[0] if to and addrs else ""
    by_name = {lst.name.lower(): lst.address.lower() for lst in lists if lst.address}
    for raw in mute:
        entry = raw.strip().lower()
        if not entry:
            continue
        for addr in addrs:
            if "@" in entry:
                hit = addr == entry or (entry.startswith("@") and addr.endswith(entry))
            else:
                hit = addr == by_name.get(entry) or addr.partition("@")[0] == entry
            if hit:
                who = "the author" if addr == author else "the list"
                return f"muted: {who} {addr} opted out (mail.mute: {raw.strip()})"
    return ""


def rate_reason(author: str, sent_total: int, sent_author: int, mail: MailSettings) -> str:
    """Why a reply must wait for the rate limits (0 = no limit), or ''."""
    total = mail.rate_per_hour
    if total and sent_total >= total:
        return f"rate limit: {sent_total} replies sent in the last hour (limit {total})"
    limit = mail.rate_per_author_per_hour
    if limit and author and sent_author >= limit:
        return f"rate limit: {sent_author} replies to {author} in the last hour (limit {limit})"
    return ""


def superseded_reason(series_id: int, state: str, superseded_by: int | None) -> str:
    """Why a held reply is moot because a new revision of its series came, or ''."""
    if superseded_by is not None:
        return f"superseded: series {series_id} was replaced by series {superseded_by}"
    if state == SeriesState.SUPERSEDED:
        return f"superseded: series {series_id} was replaced by a new revision"
    return ""
