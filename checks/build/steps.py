"""One lane's build of one step (pure but for make): what in-process runs and `lorebot
worker` jobs both call, so that a job builds exactly as the in-process check does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.core.runner import CommandResult
from checks.build import replay
from checks.build.diagnostics import Diagnostic, PathMap, parse
from checks.build.kbuild import ObjectChain
from checks.build.lane import Lane


def replayed(
    lane: Lane,
    wt: Path,
    objects: list[str],
    forced: set[str],
    changed: Sequence[str],
    jobs: int,
) -> CommandResult | None:
    """The step built by replaying Kbuild's saved commands (see `replay`), or None when
    it needs make: a change that is not only C sources and headers, a header that a
    generated file reads, an object with no saved command (never built, or not by
    Kbuild)."""
    if lane.generators is None:
        lane.generators = lane.make.generator_inputs(lane.odir)
    if not replay.replayable_change(changed, lane.generators, str(wt)):
        return None
    saved = lane.make.saved_commands(lane.odir, objects)
    if any(o not in saved for o in objects):  # what it reads is unknown: make
        return None
    mine = [saved[o] for o in objects if o in forced]
    todo = mine + [
        s
        for s in replay.affected((saved[o] for o in objects if o in saved), changed, str(wt))
        if s.object not in forced
    ]
    if not todo:
        return CommandResult((), str(lane.odir), 0, b"", "", 0.0)
    return lane.make.replay(lane.odir, todo, jobs)


def build_step(
    lane: Lane,
    wt: Path,
    chains: Sequence[ObjectChain],
    forced: set[str],
    w1: bool,
    jobs: int,
    changed: Sequence[str] = (),
) -> tuple[list[Diagnostic], list[str], str | None]:
    """One lane's build of one step, the worktree checked out at it: its diagnostics,
    the objects it compiled, and make's output when make failed without a compiler
    error (else None). In-process runs and `lorebot worker` jobs both build through it."""
    objects = lane.objects(chains, wt)
    if not objects:
        return [], objects, None
    lane.built.update(dict.fromkeys(objects))
    r = replayed(lane, wt, objects, forced, changed, jobs) if changed else None
    if r is None:
        r = lane.make.build(lane.odir, objects, forced, w1=w1, jobs=jobs)
    diags = parse(r.output, PathMap(str(wt), str(lane.odir)))
    failed = r.output if not r.ok and not any(d.severity == "error" for d in diags) else None
    return diags, objects, failed
