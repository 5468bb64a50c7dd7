"""`lorebot gc [--dry-run] [--quota BYTES] [--json]`: keep the cache under its quota by hand."""

from __future__ import annotations

import argparse
import json

from bot.cli.startup import open_database
from bot.run.gc import collect, record_usage
from config.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gc",
        help="evict least recently used build dirs and idle slots past the cache quota, "
        "remove logs and outbox mails past the retention period",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    p.add_argument(
        "--quota", type=int, default=None, help="bytes, instead of cache.quota_bytes (0: none)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_gc)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    report = collect(settings, dry_run=args.dry_run, quota=args.quota)
    if not args.dry_run:
        record_usage(open_database(settings), report)
    if args.json:
        print(json.dumps(report.json(), indent=2))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for e in report.evicted:
        size = _mib(int(e["bytes"]))
        print(f"{verb} {e['kind']} {e['path']} ({size}, last used {e['last_used']})")
    for path in report.skipped_in_use:
        print(f"kept {path}: in use")
    print(
        f"cache: {_mib(report.total_before)} -> {_mib(report.total_after)}"
        + (f" (quota {_mib(report.quota)})" if report.quota else " (no quota)")
        + f"; {verb} {report.logs_removed} run logs, {report.outbox_removed} outbox mails"
    )
    return 0
