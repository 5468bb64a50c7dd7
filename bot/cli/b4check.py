"""`lorebot b4-check [--url SERVER] [--series]`: lorebot's result for the mail on stdin, as
`b4 review` reads it from `b4.review-perpatch-check-cmd` / `b4.review-series-check-cmd`."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from bot.intake.mailparse import parse_message, parse_subject
from bot.report.b4check import b4_results, result, unknown
from config.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "b4-check",
        help="print lorebot's result for the mail on stdin as b4 review's check JSON",
    )
    p.add_argument("--url", help="a running lorebot's address (else this host's database is read)")
    p.add_argument(
        "--series", action="store_true", help="the whole series (for review-series-check-cmd)"
    )
    p.set_defaults(func=cmd_b4check)


def _from_server(url: str, msgid: str) -> dict[str, Any] | None:
    api = f"{url.rstrip('/')}/api/series/{quote(msgid, safe='@')}"
    try:
        with urllib.request.urlopen(api, timeout=30) as r:
            detail: dict[str, Any] = json.loads(r.read())
            return detail
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def _from_database(settings: Settings, msgid: str) -> dict[str, Any] | None:
    from bot.cli.startup import open_database
    from bot.web import feedback, queries

    db = open_database(settings)
    with db.session() as s:
        row = queries.find_series(s, msgid)
        if row is None:
            return None
        return feedback.annotate(s, row, queries.series_detail(s, row))


def lookup(settings: Settings, msgid: str, url: str | None, whole: bool) -> list[dict[str, str]]:
    """The result list for one Message-ID, from a server or the local database."""
    from bot.run.worker import series_url

    where = url or "this lorebot"
    try:
        detail = _from_server(url, msgid) if url else _from_database(settings, msgid)
    except (OSError, ValueError) as e:
        return [result("warn", f"not checked: cannot ask lorebot at {where}: {e}")]
    if detail is None:
        return unknown(msgid, where)
    page = (
        f"{url.rstrip('/')}/series/{quote(detail['msgid'], safe='@')}"
        if url
        else series_url(settings, detail["msgid"])
    )
    return b4_results(detail, msgid, page, whole)


def cmd_b4check(args: argparse.Namespace, settings: Settings) -> int:
    parsed = parse_message(sys.stdin.buffer.read())
    if not parsed.msgid:
        out = [result("warn", "not checked: the mail has no Message-ID")]
    else:
        cover = parse_subject(parsed.subject).counter == 0
        out = lookup(settings, parsed.msgid, args.url, args.series or cover)
    print(json.dumps(out))
    return 0
