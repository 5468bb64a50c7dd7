"""`lorebot check` progress: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

import pytest

from bot.cli.progress import ProgressPrinter


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = ProgressPrinter(out)
    p("apply", None)
    p("build", 0.25)
    p("build", 0.5)
    p("semantic", None)
    p.close()
    lines = out.getvalue().splitlines()
    assert [ln.split("] ", 1)[1] for ln in lines] == ["apply", "build", "semantic"]
    assert "\r" not in out.getvalue()


def test_bar_on_a_terminal() -> None:
    out = Tty()
    p = ProgressPrinter(out)
    p("build", 0.5)
    p("build", 1.0)
    p.close()
    text = out.getvalue()
    assert "\rbuild" in text and "#" * 15 in text and "100%" in text and text.endswith("\n")


def test_eta_from_the_pace_of_the_work_done() -> None:
    p = ProgressPrinter(io.StringIO())
    assert p.eta(100.0, 0.0) is None  # nothing done yet
    assert p.eta(110.0, 0.25) == 30.0  # a quarter in 10 s: three quarters in 30 s
    assert p.eta(120.0, 0.5) == 20.0
    assert p.eta(121.0, 0.1) is None  # a new stage starts the estimate again
    assert p.eta(131.0, 0.55) == pytest.approx(10.0)


def test_eta_is_shown_with_the_fraction() -> None:
    out = io.StringIO()
    p = ProgressPrinter(out)
    p.origin, p.last = (p.start - 20.0, 0.0), 0.0  # started 20 s ago
    p("build: patch 2/4, x86_64 defconfig", 0.5)
    assert "ETA 20s" in out.getvalue()
