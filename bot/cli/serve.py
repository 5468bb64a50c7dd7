"""`lorebot serve [--once]`: poll, check and reply until SIGTERM, with the status page."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from config.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `serve` sub-command."""
    p = subparsers.add_parser(
        "serve",
        help="run the bot: poll, check, reply, status page",
        description="Run until SIGTERM/SIGINT (which drain: the current step finishes).",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="one poll, run every queued series, send replies, then exit",
    )
    p.add_argument("--no-web", action="store_true", help="do not start the status page")
    p.set_defaults(func=run)


def _structured_logs() -> None:
    """Print key=value pairs (worker, series, step) on every log line."""
    from bot.run.logfmt import KeyValueFormatter

    for handler in logging.getLogger().handlers:
        handler.setFormatter(KeyValueFormatter())
    logging.getLogger("lorebot").setLevel(
        min(logging.INFO, logging.getLogger().getEffectiveLevel())
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Open the database and run the service (or one pass with --once)."""
    from bot.cli.startup import check_listen, open_database
    from bot.run.scheduler import Service
    from bot.web.server import page_factory

    web = not (args.once or args.no_web)
    if web:
        check_listen(settings)  # a page that cannot listen stops the start, not later
    _structured_logs()
    db = open_database(settings)
    try:
        page = page_factory(settings, db) if web else None
        service = Service(settings, db, web=page)
        return service.run_once() if args.once else service.run_forever()
    finally:
        db.dispose()
