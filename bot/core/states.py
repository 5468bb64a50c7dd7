"""The states of a series, a run and a reply, with their meanings and allowed moves.

Stored as their plain string values (a StrEnum compares equal to them), so
the database and the JSON keep their words; code never spells them as
literals.
"""

from __future__ import annotations

from enum import StrEnum


class SeriesState(StrEnum):
    """Where a series revision is in the pipeline."""

    WAITING = "waiting"  # some patches have not arrived yet
    INCOMPLETE = "incomplete"  # waited too long for the missing patches
    QUEUED = "queued"  # complete, to be checked
    RUNNING = "running"  # claimed by a worker (claimed_by) and being checked
    DONE = "done"  # checked; its findings and replies are recorded
    FAILED = "failed"  # the run could not complete; `reason` says why
    SKIPPED = "skipped"  # not ours to check (filtered, nothing to build); `reason` says
    SUPERSEDED = "superseded"  # a newer revision of the same series came
    HELD = "held"  # a fault of ours (tree not synced, toolchain missing, a check crashed):
    # `reason` says which; retried at `retry_at`; nothing is mailed meanwhile


#: Each state, and the states a series may move to from it.
SERIES_MOVES: dict[SeriesState, frozenset[SeriesState]] = {
    SeriesState.WAITING: frozenset(
        {SeriesState.QUEUED, SeriesState.INCOMPLETE, SeriesState.SUPERSEDED, SeriesState.SKIPPED}
    ),
    SeriesState.INCOMPLETE: frozenset(
        {SeriesState.QUEUED, SeriesState.WAITING, SeriesState.SUPERSEDED}
    ),
    SeriesState.QUEUED: frozenset(
        {SeriesState.RUNNING, SeriesState.SUPERSEDED, SeriesState.SKIPPED, SeriesState.WAITING}
    ),
    SeriesState.RUNNING: frozenset(
        {
            SeriesState.DONE,
            SeriesState.FAILED,
            SeriesState.QUEUED,
            SeriesState.SKIPPED,
            SeriesState.HELD,
        }
    ),
    SeriesState.HELD: frozenset({SeriesState.QUEUED, SeriesState.RUNNING, SeriesState.SUPERSEDED}),
    SeriesState.DONE: frozenset({SeriesState.QUEUED, SeriesState.RUNNING, SeriesState.SUPERSEDED}),
    SeriesState.FAILED: frozenset(
        {SeriesState.QUEUED, SeriesState.RUNNING, SeriesState.SUPERSEDED}
    ),
    SeriesState.SKIPPED: frozenset(
        {SeriesState.QUEUED, SeriesState.RUNNING, SeriesState.SUPERSEDED}
    ),
    SeriesState.SUPERSEDED: frozenset({SeriesState.QUEUED, SeriesState.WAITING}),
}

#: States in which a series has not started and may still change or be superseded.
OPEN = frozenset({SeriesState.WAITING, SeriesState.INCOMPLETE, SeriesState.QUEUED})
#: States a run of the pipeline ends in for the series.
SETTLED = frozenset(
    {
        SeriesState.DONE,
        SeriesState.FAILED,
        SeriesState.INCOMPLETE,
        SeriesState.SKIPPED,
        SeriesState.SUPERSEDED,
    }
)


def can_move(now: str, to: str) -> bool:
    """Whether a series may go from state `now` to state `to`."""
    return SeriesState(to) in SERIES_MOVES[SeriesState(now)]


class RunState(StrEnum):
    """How one pass of the pipeline over a series went."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # `error` says why
    INTERRUPTED = "interrupted"  # stopped by a drain or a dead worker; the series resumes


class ReplyState(StrEnum):
    """Where a reply mail is."""

    PENDING = "pending"  # due now, or after `not_before` when a retry backs off
    HELD = "held"  # embargo: due after `not_before`
    SENDING = "sending"  # claimed by one deliverer (`claimed_by`) for one attempt
    SENT = "sent"
    DROPPED = "dropped"  # never sent: superseded, muted, refused for good; `reason` says


class CommandState(StrEnum):
    """Where a `#lorebot` command taken from a reply is."""

    PENDING = "pending"  # recorded by intake, not yet looked at
    APPLIED = "applied"  # done: `reason` says what it did
    IGNORED = "ignored"  # an unknown command or sender, or refused (rate limit): `reason`
