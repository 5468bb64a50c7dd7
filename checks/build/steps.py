"""One lane's build of one step (pure but for make): what in-process runs and `lorebot
worker` jobs both call, so that a job builds exactly as the in-process check does."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bot.core.runner import CommandResult
from checks.build import replay
from checks.build.diagnostics import Diagnostic, PathMap, parse
from checks.build.kbuild import ObjectChain
from checks.build.lane import Lane
from checks.build.variants import satisfied


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


def set_added(lane: Lane, changed: Sequence[str]) -> dict[str, str]:
    """After a patch that changes a Kconfig file: set the symbols the series adds that the
    lane still asks for (scripts/config and olddefconfig in the sandbox: the patched
    Kconfig is the series' code); those that took, with their values."""
    if not lane.pending or not any(posixpath.basename(p).startswith("Kconfig") for p in changed):
        return {}
    config = lane.make.amend(lane.odir, lane.pending)
    lane.variant = replace(lane.variant, config=config)
    took = {s: v for s, v in lane.pending.items() if satisfied(config, s, v)}
    lane.pending = {s: v for s, v in lane.pending.items() if s not in took}
    return {s: config[s] for s in took}


def take_added(lane: Lane, added: Mapping[str, str]) -> None:
    """What `set_added` did in a lane built elsewhere (a worker's job), applied to the
    coordinator's copy of the lane."""
    if added:
        lane.variant = replace(lane.variant, config={**lane.variant.config, **added})
        lane.pending = {s: v for s, v in lane.pending.items() if s not in added}
