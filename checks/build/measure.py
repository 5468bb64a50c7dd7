"""Measure a series' patch coverage over the variants built (shell around `coverage.py`).

After the last patch is built, each variant's objects are preprocessed as they
were compiled (`preprocess.py`) until every changed line is accounted for; an
object whose source is done and that can add no header line is skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import partial
from pathlib import Path

from bot.core.results import Coverage, PlannedVariant, UncoveredLines
from checks.build.coverage import Reason, Tally, changed_lines, reason_for, seen_lines, tree_path
from checks.build.impact import Impact
from checks.build.lane import Lane
from checks.build.preprocess import preprocessed

log = logging.getLogger("lorebot.checks.build")


def _read(worktree: Path, path: str) -> str:
    try:
        return (worktree / path).read_text(errors="replace")
    except OSError:
        return ""


def object_seen(lane: Lane, obj: str, worktree: Path) -> dict[str, set[int]] | None:
    """The tree's lines `obj` compiled in the lane's O= dir (None: no preprocessed view)."""
    text = preprocessed(lane.make, lane.odir, obj)
    if text is None:
        return None
    return seen_lines(text, partial(tree_path, worktree=str(worktree), odir=str(lane.odir)))


def measure(
    lanes: Sequence[Lane],
    impacts: Mapping[int, Impact],
    diff: str,
    worktree: Path,
    dropped: Sequence[PlannedVariant],
    finished: bool,
    seen_of: Callable[[Lane, str], dict[str, set[int]] | None] | None = None,
    broken: Collection[str] = (),
) -> Coverage:
    """Changed lines, those some lane compiled, and the others grouped by reason.

    The worktree is at the series' last patch; `finished` is False when the
    deadline stopped the build before it (then nothing counts as compiled).
    `broken`: the files where the series left a compile error (its findings); when no
    lane could preprocess such a file (a fatal error: a missing header), its lines are
    compiled by no config, and say so.
    `seen_of(lane, object)` is what an object compiled (default: `object_seen` here; a
    lane built by a worker job answers from the job's result).
    """
    tally = Tally(changed_lines(diff))
    sources = {o.object: o.source for i in impacts.values() for o in i.objects}
    ruled = set(sources.values())
    texts: dict[str, str] = {}
    viewed: set[str] = set()  # sources some lane preprocessed
    stopped: set[str] = set()  # sources no lane could preprocess
    for lane in lanes if finished else ():
        for obj in list(lane.built):
            source = sources.get(obj, "")
            if tally.complete:
                break
            left = [p for p in tally.changed if tally.missing(p)]
            if not source.endswith(".c") or (
                source not in left and all(p.endswith(".c") and p in ruled for p in left)
            ):
                continue
            seen = seen_of(lane, obj) if seen_of else object_seen(lane, obj, worktree)
            if seen is None:
                log.info("coverage: no preprocessed %s for %s", obj, lane.config_label)
                stopped.add(source)
                continue
            viewed.add(source)
            for path, shown in seen.items():
                if path in tally.changed:
                    if path not in texts:
                        texts[path] = _read(worktree, path)
                    tally.add(path, texts[path], shown)
    built_srcarches = sorted({lane.arch.srcarch for lane in lanes})
    uncovered: list[UncoveredLines] = []
    covered = 0
    for path, lines in tally.changed.items():
        missing = tally.missing(path)
        covered += len(lines) - len(missing)
        if not missing:
            continue
        reason = (
            reason_for(
                path,
                built_srcarches=built_srcarches,
                included=path in tally.included,
                dropped_for_budget=_dropped_for(path, dropped, sources),
                own_object=path in ruled,
                broken=path in broken and path in stopped - viewed,
            )
            if finished
            else Reason.BUDGET
        )
        uncovered.append(UncoveredLines(file=path, lines=tuple(missing), reason=str(reason)))
    total = sum(len(v) for v in tally.changed.values())
    return Coverage(lines=total, covered=covered, uncovered=tuple(uncovered))


def _dropped_for(path: str, dropped: Sequence[PlannedVariant], sources: Mapping[str, str]) -> bool:
    """Whether a variant dropped for the budget or the variant cap would have built it."""
    for d in dropped:
        if not re.search(r"budget|max_variants", d.reason):
            continue
        if any(sources.get(o) == path for o in d.objects) or (path.endswith(".h") and d.objects):
            return True
    return False
