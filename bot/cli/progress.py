"""Progress for manual runs: a bar on a terminal, plain lines otherwise, with an ETA.

The ETA is the time the work done so far took, scaled to the work left: a check
reports its fraction from its planned work (the build check: objects to compile
in each variant at each step), and a fraction that goes back (a new stage)
starts the estimate again.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def clock(seconds: float) -> str:
    """42 → "42s", 125 → "2m05s"."""
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class ProgressPrinter:
    """Callable(step, fraction) that draws on a TTY or prints one line per step change;
    safe to call from the threads a check builds in."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.step = ""
        self.start = time.monotonic()
        self.step_start = self.start
        self.origin: tuple[float, float] | None = None  # (time, fraction) the ETA counts from
        self.last: float | None = None
        self.lock = threading.Lock()

    def eta(self, now: float, frac: float | None) -> float | None:
        """Seconds left, from the pace since the fraction last started over; None while
        there is too little to go by."""
        if frac is None:
            return None
        if self.origin is None or self.last is None or frac < self.last:
            self.origin = (now, frac)
        self.last = frac
        t0, f0 = self.origin
        if frac <= f0 or now - t0 < 1.0:
            return None
        return (now - t0) * (1.0 - frac) / (frac - f0)

    def __call__(self, step: str, frac: float | None) -> None:
        with self.lock:
            self._show(step, frac)

    def _show(self, step: str, frac: float | None) -> None:
        now = time.monotonic()
        eta = self.eta(now, frac)
        left = f" ETA {clock(eta)}" if eta is not None else ""
        if step != self.step:
            if self.tty and self.step:
                self.stream.write("\n")
            self.step, self.step_start = step, now
            if not self.tty:
                self.stream.write(f"[{now - self.start:6.1f}s] {step}{left}\n")
                self.stream.flush()
                return
        if not self.tty:
            return
        width = 30
        if frac is None:
            bar = "." * (int(now - self.step_start) % (width + 1))
            text = f"\r{step:<24} [{bar:<{width}}] {now - self.step_start:5.1f}s"
        else:
            done = int(max(0.0, min(1.0, frac)) * width)
            text = f"\r{step:<24} [{'#' * done:<{width}}] {frac * 100:3.0f}%{left}"
        self.stream.write(text + " " * 4)
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.step:
            self.stream.write("\n")
            self.stream.flush()
