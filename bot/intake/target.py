"""What the user named on the command line: a Message-ID or a lore URL → (list, msgid)."""

from __future__ import annotations

import argparse
import re
from urllib.parse import unquote, urlparse

from config.settings import ListSettings, Settings


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every command that takes one series shares: target, --list, --json."""
    parser.add_argument(
        "target",
        metavar="MSGID_OR_LORE_URL",
        help="Message-ID or lore URL of any message of the series",
    )
    parser.add_argument(
        "--list", dest="list_name", help="configured list to ask (for a bare Message-ID)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


class TargetError(ValueError):
    """The argument names no configured list or is not a Message-ID."""


_URL_RE = re.compile(r"^https?://", re.IGNORECASE)  # schemes are case-insensitive (RFC 3986)


def is_url(arg: str) -> bool:
    """Whether a command-line target is a URL (`HTTPS://` as well as `https://`)."""
    return bool(_URL_RE.match(arg.strip()))


def inbox_key(url: str) -> tuple[str, str, str]:
    """An inbox URL compared as URLs are: scheme and host in any case, no trailing slash."""
    u = urlparse(url.strip())
    return u.scheme.lower(), u.netloc.lower(), u.path.rstrip("/")


_REDIRECTORS = ("patch.msgid.link", "msgid.link")  # /<msgid> redirects to lore's /all/


def _bare(piece: str) -> str:
    """A path piece or argument as a Message-ID: decoded, without `id:` and <>."""
    return unquote(piece).strip().removeprefix("id:").strip().strip("<>").strip()


def parse_lore_url(url: str) -> tuple[str, str]:
    """Any message URL lore serves → (inbox URL, msgid).

    `/<list>/<msgid>/` and what follows it (`T/#t`, `t/`, `raw`, `#r`, `t.mbox.gz`),
    `/all/<msgid>/`, `/r/<msgid>`, a bare `/<msgid>/` (lore redirects it to /all/),
    patch.msgid.link/<msgid>; the Message-ID percent-encoded or not, in <> or not.
    """
    u = urlparse(url.strip())
    parts = [p for p in u.path.split("/") if p]
    root = f"{u.scheme}://{u.netloc}"
    redirect = u.netloc.lower() in _REDIRECTORS
    if parts and parts[0] == "r" and len(parts) >= 2:
        parts = ["all", *parts[1:]]  # lore's /r/<msgid> redirects to the message in /all/
    for i, part in enumerate(parts):
        mid = _bare(part)
        if "@" not in mid:
            continue
        if redirect:
            return "https://lore.kernel.org/all", mid
        base = f"{root}/" + "/".join(parts[:i]) if i > 0 else f"{root}/all"
        return base, mid
    raise TargetError(f"no Message-ID in URL: {url}")


def bare_msgid(arg: str) -> str:
    """The Message-ID in a command-line or web argument: a lore URL, `<id>`, `id:…`, or
    the bare id (returned as it is when it is none of these)."""
    if is_url(arg):
        try:
            return parse_lore_url(arg)[1]
        except TargetError:
            return arg.strip()
    return _bare(arg) if "%40" in arg.lower() else arg.strip().removeprefix("id:").strip("<> ")


def resolve(settings: Settings, arg: str, list_name: str | None = None) -> tuple[ListSettings, str]:
    """The configured list and the bare Message-ID for `arg`."""
    if list_name:
        try:
            lst = settings.list_(list_name)
        except KeyError:
            raise TargetError(f"no list named '{list_name}' in the settings") from None
    else:
        lst = None
    if is_url(arg):
        base, msgid = parse_lore_url(arg)
        if lst is None:
            for cand in settings.lists:
                if inbox_key(cand.url) == inbox_key(base):
                    lst = cand
                    break
        if lst is None:
            # an unconfigured list: use it read-only with the first list's trees
            trees = settings.lists[0].trees if settings.lists else []
            name = base.rstrip("/").rsplit("/", 1)[-1] or "lore"
            lst = ListSettings(name=re.sub(r"[^A-Za-z0-9._-]", "_", name), url=base, trees=trees)
        return lst, msgid
    msgid = bare_msgid(arg)
    if "@" not in msgid:
        raise TargetError(f"not a Message-ID or lore URL: {arg}")
    if lst is None:
        if not settings.lists:
            raise TargetError("no [[lists]] configured; pass a lore URL")
        lst = settings.lists[0]
    return lst, msgid
