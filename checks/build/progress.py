"""How far a build run is through its plan: the fraction of planned work done (for an ETA)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from checks.build.impact import Impact
from checks.build.kbuild import ObjectChain
from checks.build.lane import Lane

Report = Callable[[str, float | None], None]  # CheckContext.progress


class StepProgress:
    """The work planned for each (step, lane), in objects to compile plus one for the make
    or replay call itself; lanes report as they finish a step (from several threads)."""

    def __init__(
        self,
        report: Report,
        patches: int,
        lanes: Sequence[Lane],
        chains: Sequence[ObjectChain],
        impacts: Mapping[int, Impact],
        worktree: Path,
    ):
        self.report = report
        self.patches = patches
        self.lanes = list(lanes)
        self.work: dict[tuple[int, int], int] = {}
        for n, lane in enumerate(lanes):
            mine = set(lane.objects(chains, worktree))
            self.work[(0, n)] = len(mine) + 1
            for index, impact in impacts.items():
                self.work[(index, n)] = len(mine & {o.object for o in impact.objects}) + 1
        self.done = 0
        self._lock = threading.Lock()

    def fraction(self) -> float:
        return self.done / max(1, sum(self.work.values()))

    def step_name(self, index: int) -> str:
        return "baseline" if index == 0 else f"patch {index}/{self.patches}"

    def step(self, index: int) -> None:
        """A step starts."""
        self.report(f"build: {self.step_name(index)}", self.fraction())

    def lane_done(self, index: int, lane: Lane) -> None:
        """One variant finished a step: the progress says which, and how far the plan is."""
        with self._lock:
            self.done += self.work.get((index, self.lanes.index(lane)), 1)
            fraction = self.fraction()
        self.report(
            f"build: {self.step_name(index)}, {lane.arch.name} {lane.config_label}", fraction
        )
