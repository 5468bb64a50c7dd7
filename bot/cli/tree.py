"""`lorebot tree sync [NAME]` and `lorebot tree import NAME TARBALL [--branch B]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.cli.startup import StartupError, open_database
from bot.core.runner import Runner
from bot.run.treesync import sync_tree
from bot.trees.repo import Repo, TreeError
from config.settings import Settings
from state.db import Database


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tree", help="keep kernel trees: sync mirrors, import tarballs")
    tsub = p.add_subparsers(dest="tree_command", required=True)
    s = tsub.add_parser("sync", help="fetch the configured trees' branches")
    s.add_argument("name", nargs="?", help="only this tree")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_sync)
    i = tsub.add_parser("import", help="make a kernel source tarball one commit of a tree")
    i.add_argument("name")
    i.add_argument("tarball", type=Path)
    i.add_argument("--branch", default="master")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_import)


def _repo(settings: Settings) -> Repo:
    return Repo.open(settings, Runner(settings.paths.logs / "trees"))


def _database(settings: Settings) -> Database | None:
    """The state database, to record the sync for the page (None when it cannot open)."""
    try:
        return open_database(settings)
    except StartupError:  # a sync by hand works without the state
        return None


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    trees = [t for t in settings.trees if not args.name or t.name == args.name]
    if args.name and not trees:
        print(f"lorebot: no tree named '{args.name}' in the settings", file=sys.stderr)
        return 2
    status = 0
    out: dict[str, object] = {}
    db = _database(settings) if any(t.url for t in trees) else None
    for tree in trees:
        if not tree.url:
            out[tree.name] = {"skipped": "no url (imported tree)"}
            continue
        result = sync_tree(settings, db, tree)
        if result.ok:
            out[tree.name] = result.heads
        else:
            out[tree.name] = {"error": result.error}
            status = 1
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, res in out.items():
            print(f"{name}: {res}")
    return status


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    repo = _repo(settings)
    try:
        sha, files, seconds = repo.import_tarball(args.name, args.tarball, args.branch)
    except (TreeError, RuntimeError) as e:
        print(f"lorebot: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "tree": args.name,
                    "branch": args.branch,
                    "sha": sha,
                    "files": files,
                    "seconds": round(seconds, 1),
                }
            )
        )
    else:
        print(f"{args.name}/{args.branch} = {sha} ({files} files, {seconds:.1f} s)")
    return 0
