"""`lorebot apply MSGID_OR_LORE_URL [--json]`: fetch, assemble, pick the base, apply."""

from __future__ import annotations

import argparse
import json
import sys

from bot.core.models import ApplyResult
from bot.core.runner import Runner
from bot.intake.target import TargetError, add_target_arguments
from bot.trees.repo import Repo, acquire_slot
from config.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="apply a series from the list to its base, in a slot")
    add_target_arguments(p)
    p.set_defaults(func=cmd_apply)


def apply_json(r: ApplyResult) -> dict[str, object]:
    """The `lorebot apply --json` object (keys are an interface: add, never rename)."""
    return {
        "ok": r.ok,
        "tree": r.tree,
        "branch": r.branch,
        "base": r.base,
        "patches": [
            {"index": p.index, "msgid": p.msgid, "subject": p.subject, "commit": p.commit}
            for p in r.patches
        ],
        "failed_patch": r.failed_patch,
        "tried": [t.model_dump() for t in r.tried],
        "message": r.message,
        "failed_file": r.failed_file,
        "failed_hunk": r.failed_hunk,
        "worktree": r.worktree,
    }


def print_apply(r: ApplyResult) -> None:
    if r.ok:
        print(f"applied on {r.tree}/{r.branch} {r.base[:12]} in {r.worktree}")
    else:
        print(f"cannot apply: {r.message}")
        if r.failed_hunk:
            print("failed hunk:\n" + r.failed_hunk)
    for p in r.patches:
        print(f"  [{p.index}] {(p.commit or 'not applied')[:12]:<12} {p.subject}")
    for t in r.tried:
        print(f"  tried {t.how:<12} {t.tree}/{t.branch} {t.sha[:12]}: {'ok' if t.ok else t.reason}")


def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    from bot.intake.b4adapter import guess_base
    from bot.intake.series import load_target
    from bot.trees.apply import apply_series

    try:
        lst, series, parent = load_target(settings, args.target, args.list_name)
    except (TargetError, LookupError) as e:
        print(f"lorebot: {e}", file=sys.stderr)
        return 2
    repo = Repo.open(settings, Runner(settings.paths.logs / "apply"))
    with acquire_slot(repo, settings.paths.cache, settings.apply.slots) as slot:
        result = apply_series(settings, repo, slot, series, lst, parent=parent, guess=guess_base)
    if args.json:
        print(json.dumps(apply_json(result), indent=2))
    else:
        print_apply(result)
    return 0 if result.ok else 1
