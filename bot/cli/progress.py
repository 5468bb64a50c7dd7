"""Progress for manual runs: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressPrinter:
    """Callable(step, fraction) that draws on a TTY or prints one line per step change."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.step = ""
        self.start = time.monotonic()
        self.step_start = self.start

    def __call__(self, step: str, frac: float | None) -> None:
        now = time.monotonic()
        if step != self.step:
            if self.tty and self.step:
                self.stream.write("\n")
            self.step, self.step_start = step, now
            if not self.tty:
                self.stream.write(f"[{now - self.start:6.1f}s] {step}\n")
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
            text = f"\r{step:<24} [{'#' * done:<{width}}] {frac * 100:3.0f}%"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.step:
            self.stream.write("\n")
            self.stream.flush()
