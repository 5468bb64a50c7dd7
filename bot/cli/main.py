"""`lorebot` command line: global options, then one sub-command per module of bot/cli."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from config.settings import SettingsError, load_settings

# each module has register(subparsers) that sets `func(args, settings) -> int`
COMMAND_MODULES = (
    "series",
    "poll",
    "tree",
    "apply",
    "check",
    "serve",
    "demo",
    "gc",
    "b4check",
    "worker",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lorebot", description=__doc__)
    parser.add_argument("--config", type=Path, help="settings file (TOML)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"bot.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"bot.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from bot.cli.startup import StartupError, check_paths

    try:
        settings = load_settings(args.config)
        check_paths(settings)
        return int(args.func(args, settings))
    except (SettingsError, StartupError) as e:
        # a fault the operator fixes: one line naming the key or path, no traceback
        print(f"lorebot: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
