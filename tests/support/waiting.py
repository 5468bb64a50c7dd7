"""Wait for a condition, not for a time: the one polling loop the tests use."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    cond: Callable[[], T],
    timeout: float = 20.0,
    what: str = "condition",
    interval: float = 0.02,
    context: Callable[[], str] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll `cond` until it returns something truthy, and return that.

    `timeout` only bounds a failure: a passing test waits as long as the
    condition takes. Exceptions of the types in `ignore` count as "not yet"
    (a server still starting); on timeout `context()`, if given, is added to
    the message (e.g. the tail of a log).
    """
    deadline = time.monotonic() + timeout
    while True:
        value: T | None = None
        with contextlib.suppress(*ignore):
            value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{extra}")
        time.sleep(interval)
