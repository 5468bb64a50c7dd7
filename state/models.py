"""Tables: messages, cursors, series, patches, runs, findings, replies, polls, faults.

The schema is versioned by Alembic (state/migrations); change it only with a
new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.core.states import ReplyState, RunState, SeriesState


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Message(Base):
    """One message of a list, recorded once (list, Message-ID)."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("list_name", "msgid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_name: Mapped[str] = mapped_column(String(200), index=True)
    msgid: Mapped[str] = mapped_column(String(998))
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    blob_commit: Mapped[str] = mapped_column(String(64), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    in_reply_to: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id"), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # when the inbox took it in (its commit's time): where a series' lag starts
    landed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Cursor(Base):
    """The last inbox commit taken in, per list and epoch."""

    __tablename__ = "cursors"

    list_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    commit: Mapped[str] = mapped_column(String(64), default="")
    fingerprint: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SeriesRow(Base):
    """One revision of a series and where it is in the pipeline."""

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("list_name", "msgid"), Index("ix_series_state", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    list_name: Mapped[str] = mapped_column(String(200))
    msgid: Mapped[str] = mapped_column(String(998))
    thread_msgid: Mapped[str] = mapped_column(String(998), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    total: Mapped[int] = mapped_column(Integer, default=1)
    author: Mapped[str] = mapped_column(Text, default="")
    author_email: Mapped[str] = mapped_column(String(320), default="", index=True)
    key: Mapped[str] = mapped_column(String(400), default="", index=True)  # revision family
    complete: Mapped[bool] = mapped_column(default=False)
    has_cover: Mapped[bool] = mapped_column(default=False)
    base_commit: Mapped[str] = mapped_column(String(64), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("series.id"), nullable=True)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("series.id"), nullable=True)
    # waiting -> queued -> running -> done | failed; incomplete, skipped, superseded
    state: Mapped[str] = mapped_column(String(20), default=SeriesState.WAITING)
    step: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # refreshed by the holder while it works: how other hosts tell a live claim from a dead one
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # when held
    holds: Mapped[int] = mapped_column(Integer, default=0)  # holds in a row (the backoff)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    patches: Mapped[list[PatchRow]] = relationship(
        back_populates="series", order_by="PatchRow.idx", cascade="all, delete-orphan"
    )
    runs: Mapped[list[RunRow]] = relationship(
        back_populates="series", order_by="RunRow.id", cascade="all, delete-orphan"
    )


class PatchRow(Base):
    __tablename__ = "patches"
    __table_args__ = (UniqueConstraint("series_id", "idx"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    msgid: Mapped[str] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(Text, default="")
    trailers: Mapped[list[Any]] = mapped_column(default=list)

    series: Mapped[SeriesRow] = relationship(back_populates="patches")


class RunRow(Base):
    """One pass of the pipeline over a series."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default=RunState.RUNNING)
    step: Mapped[str] = mapped_column(String(40), default="")
    worker: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    tree: Mapped[str] = mapped_column(String(200), default="")
    branch: Mapped[str] = mapped_column(String(200), default="")
    base_sha: Mapped[str] = mapped_column(String(64), default="")
    apply_ok: Mapped[bool | None] = mapped_column(nullable=True)
    failed_patch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    tried: Mapped[list[Any]] = mapped_column(default=list)
    patch_commits: Mapped[list[Any]] = mapped_column(default=list)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checks: Mapped[dict[str, Any]] = mapped_column(default=dict)  # check -> status/notes
    notes: Mapped[list[Any]] = mapped_column(default=list)  # Notes: facts, never mailed
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)  # build: variants, dropped
    log_dir: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")

    series: Mapped[SeriesRow] = relationship(back_populates="runs")
    findings: Mapped[list[FindingRow]] = relationship(
        back_populates="run", order_by="FindingRow.id", cascade="all, delete-orphan"
    )


class FindingRow(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    check: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(80))
    severity: Mapped[str] = mapped_column(String(20))
    patch_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    file: Mapped[str] = mapped_column(Text, default="")
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the whole Finding

    run: Mapped[RunRow] = relationship(back_populates="findings")


class ReplyRow(Base):
    """A reply mail: recorded (pending) before it is sent, claimed, marked sent after."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("series.id"), nullable=True, index=True
    )
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    msgid: Mapped[str] = mapped_column(String(998), unique=True)
    in_reply_to: Mapped[str] = mapped_column(String(998), default="")
    to_addrs: Mapped[list[Any]] = mapped_column(default=list)
    cc_addrs: Mapped[list[Any]] = mapped_column(default=list)
    author_email: Mapped[str] = mapped_column(String(320), default="", index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[str] = mapped_column(Text, default="")  # the whole message as sent
    digest: Mapped[str] = mapped_column(String(64), default="", index=True)  # content key
    # a ReplyState: pending|held -> sending -> sent; or dropped
    state: Mapped[str] = mapped_column(String(20), default=ReplyState.PENDING, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    not_before: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # sends tried and not taken
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # the items it reports (fingerprints, patch, text): what a `#lorebot invalid` names
    items: Mapped[list[Any]] = mapped_column(default=list)


class PollRow(Base):
    """One intake pass: for poller health on the status page."""

    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_name: Mapped[str] = mapped_column(String(200), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    seconds: Mapped[float] = mapped_column(default=0.0)
    new_messages: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")


class FaultRow(Base):
    """A fault of the service that needs an operator (e.g. the SMTP relay refuses us).

    One row per kind while it lasts, deleted when it clears; the page and
    /metrics show it, whichever process found it.
    """

    __tablename__ = "faults"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    message: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class TreeSyncRow(Base):
    """The sync of one configured tree: the last try, the last good one, and why it failed."""

    __tablename__ = "tree_syncs"

    tree: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_try_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_ok_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    seconds: Mapped[float] = mapped_column(default=0.0)  # the last try's duration
    error: Mapped[str] = mapped_column(Text, default="")  # the last try's, "" when it went well
    failures: Mapped[int] = mapped_column(Integer, default=0)  # failed tries in a row
    heads: Mapped[dict[str, Any]] = mapped_column(default=dict)  # branch -> sha
    changed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CacheUsageRow(Base):
    """Bytes under the cache per kind (slots, build, git, ccache, …), as the last gc measured."""

    __tablename__ = "cache_usage"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    measured_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CommandRow(Base):
    """A `#lorebot <command>` line of a reply to one of our mails, taken in once.

    One row per command line (`seq` within its mail); `state` is a
    CommandState: pending until applied or ignored (with the reason).
    """

    __tablename__ = "commands"
    __table_args__ = (UniqueConstraint("msgid", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    msgid: Mapped[str] = mapped_column(String(998))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    list_name: Mapped[str] = mapped_column(String(200), default="")
    in_reply_to: Mapped[str] = mapped_column(String(998), default="", index=True)
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("series.id"), nullable=True, index=True
    )
    series_key: Mapped[str] = mapped_column(String(400), default="", index=True)
    sender: Mapped[str] = mapped_column(String(320), default="")
    sender_name: Mapped[str] = mapped_column(Text, default="")
    command: Mapped[str] = mapped_column(String(40), default="")
    argument: Mapped[str] = mapped_column(Text, default="")
    quote: Mapped[str] = mapped_column(Text, default="")  # the quoted lines above the command
    fingerprints: Mapped[list[Any]] = mapped_column(default=list)  # what `invalid` marks
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class MutedRow(Base):
    """An address that asked (`#lorebot mute`) not to be mailed; deleted by `unmute`."""

    __tablename__ = "muted"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    command_msgid: Mapped[str] = mapped_column(String(998), default="")
    since: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
