"""Frozen values passed between pipeline stages."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PatchMail(_Frozen):
    """One patch of a series, as mailed."""

    index: int  # 1-based position in the series
    msgid: str
    subject: str  # the full subject as sent, e.g. "[PATCH v2 3/5] mm: foo"
    title: str = ""  # the subject without the [PATCH ...] prefix
    author: str = ""  # "Name <addr>"
    author_email: str = ""
    date: str = ""
    mbox: bytes = b""  # the patch in `git am` form (one message), trailers included
    references: tuple[str, ...] = ()  # the thread chain, oldest first
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: str = ""
    trailers: tuple[str, ...] = ()


class Series(_Frozen):
    """A series as a maintainer recognises it: one revision, its patches in order."""

    msgid: str  # the cover letter's Message-ID, else the first patch's
    subject: str
    version: int = 1
    total: int = 1
    complete: bool = True
    cover: str | None = None  # cover letter Message-ID
    cover_subject: str = ""
    base_commit: str | None = None
    parent: str | None = None  # Message-ID of the series a follow-up goes on top of
    author: str = ""
    author_email: str = ""
    subject_tags: tuple[str, ...] = ()  # tags in the [PATCH ...] prefix, e.g. ("mm-unstable",)
    change_id: str = ""
    patches: tuple[PatchMail, ...] = ()
    missing: tuple[int, ...] = ()  # indexes not received (incomplete series)


class BaseAttempt(_Frozen):
    how: str  # "base-commit", "subject-tag", "branch", "b4-guess"
    tree: str
    branch: str = ""
    sha: str = ""
    ok: bool = False
    reason: str = ""
    missing: bool = False  # the base was not there to try (not synced, not in any tree)


class AppliedPatch(_Frozen):
    index: int
    msgid: str
    subject: str
    commit: str | None = None  # None when not applied
    parent_patch: bool = False  # a patch of the parent series (for follow-ups)


class ApplyResult(_Frozen):
    ok: bool
    tree: str = ""
    branch: str = ""
    base: str = ""  # base sha
    worktree: str = ""
    patches: tuple[AppliedPatch, ...] = ()
    failed_patch: int | None = None
    tried: tuple[BaseAttempt, ...] = ()
    message: str = ""
    failed_file: str = ""
    failed_hunk: str = ""
    # it failed on a base the author named (base-commit found, or a mapped subject tag):
    # only then is "does not apply" the author's to hear
    base_certain: bool = False
    # a fault of ours kept it from being applied (a configured branch not synced):
    # the series is held and retried, never mailed
    fault: str = ""
    # not ours to check: it applies nowhere and its MAINTAINERS tree is not configured
    # here; the series is skipped with this reason, never mailed
    skipped: str = ""
