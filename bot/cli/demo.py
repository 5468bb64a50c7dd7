"""`lorebot demo`: the main job offline on embedded defaults; prints the status page URL."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from bot.core.states import SeriesState
from config.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole bot offline on a demo series")
    p.add_argument("--port", type=int, default=0, help="status page port (default: a free one)")
    p.add_argument(
        "--arches", default="x86_64", help="comma-separated arches to build (default: x86_64)"
    )
    p.add_argument(
        "--exit",
        action="store_true",
        help="exit once the reply is written instead of serving the page",
    )
    p.add_argument("--timeout", type=float, default=1800)
    p.set_defaults(func=cmd_demo)


def _serve_until_interrupted(url: str) -> None:
    print(f"serving {url}/ — press Ctrl-C to stop", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo.run import DemoError, run_demo

    logging.getLogger("lorebot").setLevel(logging.WARNING)
    try:
        result = run_demo(
            settings,
            port=args.port,
            arches=[a for a in args.arches.split(",") if a],
            timeout=args.timeout,
            keep_serving=None if args.exit else _serve_until_interrupted,
            say=lambda line: print(line, flush=True),
        )
    except DemoError as e:
        print(f"lorebot demo: {e}", file=sys.stderr)
        return 1
    return 0 if result.state == SeriesState.DONE and result.replies else 1
