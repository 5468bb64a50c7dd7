"""`lorebot series MSGID_OR_LORE_URL`: fetch a thread and print the series assembled from it."""

from __future__ import annotations

import argparse
import json
import sys

from bot.core.models import Series
from bot.intake.b4adapter import ThreadFetchError, ThreadNotFound
from bot.intake.series import SeriesError, load_series
from bot.intake.target import TargetError, add_target_arguments, resolve
from config.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("series", help="show the series a message belongs to")
    add_target_arguments(p)
    p.set_defaults(func=run)


def as_json(series: Series) -> dict[str, object]:
    return {
        "msgid": series.msgid,
        "subject": series.subject,
        "version": series.version,
        "complete": series.complete,
        "cover": series.cover,
        "base_commit": series.base_commit,
        "parent": series.parent,
        "patches": [
            {"index": p.index, "msgid": p.msgid, "subject": p.subject} for p in series.patches
        ],
    }


def as_text(series: Series) -> str:
    state = (
        "complete"
        if series.complete
        else "incomplete, missing " + ", ".join(f"{i}/{series.total}" for i in series.missing)
    )
    lines = [
        f"{series.subject}",
        f"  version: v{series.version}, {series.total} patch(es), {state}",
        f"  msgid: <{series.msgid}>",
    ]
    if series.cover:
        lines.append(f"  cover: <{series.cover}>")
    if series.base_commit:
        lines.append(f"  base-commit: {series.base_commit}")
    if series.parent:
        lines.append(f"  follow-up on top of: <{series.parent}>")
    if series.subject_tags:
        lines.append(f"  tags: {' '.join(series.subject_tags)}")
    for p in series.patches:
        lines.append(f"  {p.index}/{series.total} {p.subject}")
        lines.append(f"      <{p.msgid}>")
        lines += [f"      + {t}" for t in p.trailers]
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        lst, msgid = resolve(settings, args.target, args.list_name)
    except TargetError as e:
        print(f"lorebot series: {e}", file=sys.stderr)
        return 2
    try:
        series = load_series(settings, lst, msgid)
    except (ThreadFetchError, ThreadNotFound, SeriesError) as e:
        print(f"lorebot series: {e}", file=sys.stderr)
        return 1
    print(json.dumps(as_json(series)) if args.json else as_text(series))
    return 0
