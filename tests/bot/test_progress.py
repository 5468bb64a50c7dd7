"""`lorebot check` progress: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

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
