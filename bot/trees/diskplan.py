"""What to remove from the cache to stay under its quota: a pure plan, least recently used
first, never an entry in use (a slot or build dir whose lock a run holds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CacheEntry:
    """One evictable thing under the cache: a build dir or a worktree slot."""

    path: Path
    kind: str  # "build" or "slot"
    bytes: int
    used_at: float  # seconds since the epoch of its last use
    in_use: bool


def plan_eviction(entries: list[CacheEntry], total: int, quota: int) -> list[CacheEntry]:
    """The entries to remove, oldest use first, until `total` bytes is at most `quota`
    (negative: remove every idle entry).

    Idle build dirs go before idle slots of the same age class: a slot costs a kernel
    checkout (~12 s) to make again, a build dir only its objects.
    """
    if total <= quota:
        return []
    out: list[CacheEntry] = []
    for e in sorted(
        (e for e in entries if not e.in_use), key=lambda e: (e.used_at, e.kind != "build")
    ):
        if total <= quota:
            break
        out.append(e)
        total -= e.bytes
    return out


def free_needed(free: int, minimum: int) -> int:
    """Bytes to free before a check may start (0: enough free already)."""
    return max(0, minimum - free)
