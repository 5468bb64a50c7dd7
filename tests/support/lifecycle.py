"""A server a test starts and stops, usable as a context manager."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Managed:
    """`with X() as x:` starts x, and stops it however the block ends."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
