"""`lorebot worker`: run build jobs from the broker ([dispatch] broker_url) until stopped.

Each worker has its own cache (tree mirror, slots, build dirs, ccache): it fetches
the base a job needs from the tree's URL and builds in the sandbox, one job at a time.
"""

from __future__ import annotations

import argparse
from typing import Any

from config.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `worker` sub-command."""
    p = subparsers.add_parser(
        "worker",
        help="run build jobs sent by `lorebot serve` through the broker",
        description="A Celery worker for lorebot's build jobs ([dispatch] in the settings).",
    )
    p.add_argument("--name", default="", help="this worker's name (default: host-pid)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.dispatch.broker_url:
        print("lorebot worker: set [dispatch] broker_url (e.g. redis://127.0.0.1:6379/0)")
        return 2
    from bot.run.dispatch import serve_worker
    from bot.run.jobhost import worker_name

    if args.name:
        d = settings.dispatch.model_copy(update={"worker_name": args.name})
        settings = settings.model_copy(update={"dispatch": d})
    serve_worker(settings, worker_name(settings))
    return 0
