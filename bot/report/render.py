"""Render the replies to a checked series: which mails, and what each one says (pure).

`render_replies` turns the apply result and the findings into `ReplyDraft`s:
one reply per patch that introduces findings, to that patch's message, and at
most one summary to the cover letter (or the first patch) when the findings
span patches, some belong to the series as a whole, or the series does not
apply. Who each reply goes to and how it threads is `bot.report.headers`.
Nothing here sends mail or touches the database (see bot/mail).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from importlib import metadata

from pydantic import BaseModel, ConfigDict

from bot.core.models import ApplyResult, PatchMail, Series
from bot.core.results import Coverage, Finding, Uncompiled
from bot.report import text as rt
from bot.report.headers import (
    bare_msgid,
    clean_header,
    draft_digest,
    recipients,
    reply_msgid,
    reply_subject,
    series_cc,
    series_target,
    thread_chain,
)
from bot.report.policy import DEFAULT, flooded, mailable
from config.settings import MailPolicySettings, Settings

_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


def bot_version() -> str:
    """The installed lorebot version (for X-Lorebot and the footer)."""
    try:
        return metadata.version("lorebot")
    except metadata.PackageNotFoundError:
        return "0.1.0"


class ReplyItem(BaseModel):
    """One item a reply reports: the findings it stands for and its text in the mail
    (a `#lorebot invalid` under a quote of it names it)."""

    model_config = ConfigDict(frozen=True)

    fingerprints: tuple[str, ...]
    patch: int | None
    headline: str
    text: str


def _item(p: rt.Problem, text: str) -> ReplyItem:
    prints = p.fingerprints or (p.first.fingerprint,)
    return ReplyItem(fingerprints=prints, patch=p.first.patch, headline=rt.headline(p), text=text)


class ReplyDraft(BaseModel):
    """One reply, ready to be given a Message-ID and sent; msgids without <>."""

    model_config = ConfigDict(frozen=True)

    kind: str  # "patch", "summary", "not-applied", "success"
    patch: int | None  # 1-based patch index, None for a reply to the series
    in_reply_to: str
    references: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str
    digest: str  # stable: the same findings for the same target give the same digest
    msgid: str = ""  # given at render time, so that the body can link to itself (Closes:)
    items: tuple[ReplyItem, ...] = ()  # what it reports, item by item


def render_replies(
    series: Series,
    applied: ApplyResult,
    findings: list[Finding],
    settings: Settings,
    series_url: str,
    policy: MailPolicySettings = DEFAULT,
    all_passed: bool = True,
    archive: str = "",
    uncompiled: Sequence[Uncompiled] = (),
    parent: Series | None = None,
    coverage: Coverage | None = None,
) -> list[ReplyDraft]:
    """All replies for one run: the summary (if any) first, then one per patch.

    Only what the list's mail `policy` lets through is mailed. A series that
    does not apply is mailed only when its base is certain (its base-commit or
    a mapped subject tag failed); past `max_patch_mails` patches with findings,
    one summary replaces the patch mails. A success mail (where enabled) only
    when every check passed. `archive` is the list's archive URL: a reply that
    asks for a Reported-by: tag gives the Closes: link to itself there. A
    follow-up's reproduce lines apply its `parent` series first.
    """
    if not series.patches:
        return []
    if not applied.ok:
        return [_not_applied(series, applied, settings, series_url)] if applied.base_certain else []
    mailed = mailable(findings, policy)
    known = {p.index for p in series.patches}
    per_patch: dict[int, list[Finding]] = {}
    whole: list[Finding] = []
    for f in mailed:
        if f.patch in known:
            per_patch.setdefault(f.patch, []).append(f)
        else:
            whole.append(f)
    summary = partial(
        _summary,
        series,
        applied,
        per_patch,
        whole,
        settings,
        series_url,
        policy,
        archive=archive,
        coverage=rt.coverage(uncompiled, coverage),
    )
    if flooded(len(per_patch), policy):
        return [summary(flood=True)]
    drafts = [
        _patch_reply(
            series,
            applied,
            _patch(series, idx),
            fs,
            settings,
            series_url,
            archive,
            rt.coverage(uncompiled, coverage),
            parent,
        )
        for idx, fs in sorted(per_patch.items())
    ]
    if len(per_patch) > 1 or whole:
        drafts.insert(0, summary())
    elif not findings and all_passed and settings.mail.success_summary:
        drafts.append(_success(series, applied, settings, series_url))
    return drafts


def _tree_url(settings: Settings, applied: ApplyResult) -> str:
    """Where a reader fetches the tested tree: its public URL; '' for a tree known here
    only by a local path or imported from a tarball (a mail names no path of ours)."""
    try:
        tree = settings.tree(applied.tree)
    except KeyError:
        return ""
    if tree.public_url:
        return tree.public_url
    return tree.url if _REMOTE.match(tree.url) else ""


def _patch(series: Series, index: int) -> PatchMail:
    return next(p for p in series.patches if p.index == index)


def _closes(archive: str, msgid: str) -> str:
    return f"{archive.rstrip('/')}/{msgid}/" if archive else ""


def _patch_reply(
    series: Series,
    applied: ApplyResult,
    patch: PatchMail,
    found: list[Finding],
    settings: Settings,
    series_url: str,
    archive: str = "",
    coverage: str = "",
    parent: Series | None = None,
) -> ReplyDraft:
    problems = rt.group_findings(found)
    keys = [f"{p.first.patch}:{p.first.fingerprint}" for p in problems]
    digest = draft_digest("patch", patch.msgid, keys)
    msgid = reply_msgid(settings, digest)
    name, to, cc = recipients(patch, settings)
    parts = [rt.greeting(name), rt.intro(problems, "this patch")]
    sections = [
        rt.problem_section(
            p, i, len(problems), series, applied, _tree_url(settings, applied), parent
        )
        for i, p in enumerate(problems, 1)
    ]
    parts += sections
    parts += [
        *([coverage] if coverage else []),
        rt.base_section(applied, patch.index, series.total, followup=parent is not None),
        rt.reported_by(settings.mail.reported_by, _closes(archive, msgid)),
        rt.footer(series_url),
    ]
    return ReplyDraft(
        kind="patch",
        patch=patch.index,
        in_reply_to=bare_msgid(patch.msgid),
        references=thread_chain(patch),
        to=to,
        cc=cc,
        subject=reply_subject(patch.subject),
        body="\n\n".join(parts) + "\n",
        digest=digest,
        msgid=msgid,
        items=tuple(_item(p, t) for p, t in zip(problems, sections, strict=True)),
    )


def _summary(
    series: Series,
    applied: ApplyResult,
    per_patch: dict[int, list[Finding]],
    whole: list[Finding],
    settings: Settings,
    series_url: str,
    policy: MailPolicySettings = DEFAULT,
    flood: bool = False,
    archive: str = "",
    coverage: str = "",
) -> ReplyDraft:
    """One line per problem, at most `summary_max_lines` of them; with `flood`, it stands
    in for the patch mails (the details are on the status page)."""
    target, subject, refs = series_target(series)
    name, to, cc = recipients(series.patches[0], settings, series_cc(series))
    grouped = {idx: rt.group_findings(fs) for idx, fs in sorted(per_patch.items())}
    series_wide = rt.group_findings(whole)
    n = sum(len(ps) for ps in grouped.values()) + len(series_wide)
    in_patches = f" in {len(grouped)} patch{'es' if len(grouped) != 1 else ''}" if grouped else ""
    text = f"This series introduces {n} problem{'s' if n > 1 else ''}{in_patches}"
    text += " that the tested base does not have."
    if flood:
        text += " They are listed here, one line each; the details are on the status page:"
    elif grouped:
        text += " The details are in the reply to each patch:"
    groups = [
        [
            rt.patch_label(_patch(series, idx), series.total),
            *(rt.item("  ", rt.headline(p), "    ") for p in problems),
        ]
        for idx, problems in grouped.items()
    ]
    if series_wide:
        groups.append(
            [
                "The series as a whole:",
                *(rt.item("  ", rt.headline(p), "    ") for p in series_wide),
            ]
        )
    parts = [
        rt.greeting(name),
        rt.wrap(text),
        *rt.bounded(groups, policy.summary_max_lines),
        *([coverage] if coverage else []),
        rt.base_section(applied, None, series.total),
    ]
    keys = [
        f"{p.first.patch}:{p.first.fingerprint}"
        for ps in (*grouped.values(), series_wide)
        for p in ps
    ]
    digest = draft_digest("summary", target, keys)
    msgid = reply_msgid(settings, digest)
    if series_wide or flood:
        parts.append(rt.reported_by(settings.mail.reported_by, _closes(archive, msgid)))
    parts.append(rt.footer(series_url))
    return ReplyDraft(
        kind="summary",
        patch=None,
        in_reply_to=target,
        references=refs,
        to=to,
        cc=cc,
        subject=reply_subject(subject),
        body="\n\n".join(parts) + "\n",
        digest=digest,
        msgid=msgid,
        items=tuple(
            _item(p, rt.headline(p)) for ps in (*grouped.values(), series_wide) for p in ps
        ),
    )


def _not_applied(
    series: Series, applied: ApplyResult, settings: Settings, series_url: str
) -> ReplyDraft:
    target, subject, refs = series_target(series)
    name, to, cc = recipients(series.patches[0], settings, series_cc(series))
    idx = applied.failed_patch
    failed = _patch(series, idx) if idx in {p.index for p in series.patches} else None
    parts = [rt.greeting(name)]
    if failed is not None:
        parts.append(
            rt.wrap(
                f"This series does not apply, so it was not built or checked: "
                f"patch {failed.index}/{series.total} fails."
            )
        )
        parts.append(
            f"  {clean_header(failed.subject)}\n  Message-ID: <{bare_msgid(failed.msgid)}>"
        )
    else:
        parts.append(rt.wrap("This series does not apply, so it was not built or checked."))
    if applied.failed_file:
        parts.append(
            rt.wrap(
                f"It fails in {applied.failed_file}"
                + (", at this hunk:" if applied.failed_hunk else ".")
            )
        )
    if applied.failed_hunk:
        parts.append(applied.failed_hunk.strip("\n"))
    if applied.message.strip():
        parts.append("git am -3 said:")
        parts.append(applied.message.strip("\n"))
    if applied.tried:
        parts.append(rt.tried_list(applied.tried, "Bases tried:"))
    parts.append(
        rt.wrap(
            "If the series depends on other patches or on a particular tree, please say "
            "so in the cover letter, or record its base when you send it:"
        )
    )
    parts.append("  git format-patch --base=<commit> ...")
    parts.append(rt.footer(series_url))
    keys = [str(idx), applied.failed_file, applied.failed_hunk]
    return ReplyDraft(
        kind="not-applied",
        patch=None,
        in_reply_to=target,
        references=refs,
        to=to,
        cc=cc,
        subject=reply_subject(subject),
        body="\n\n".join(parts) + "\n",
        digest=draft_digest("not-applied", target, keys),
    )


def _success(
    series: Series, applied: ApplyResult, settings: Settings, series_url: str
) -> ReplyDraft:
    target, subject, refs = series_target(series)
    name, to, cc = recipients(series.patches[0], settings, series_cc(series))
    parts = [
        rt.greeting(name),
        rt.wrap("This series builds and passes the checks: no new problems found."),
        rt.base_section(applied, None, series.total),
        rt.footer(series_url),
    ]
    return ReplyDraft(
        kind="success",
        patch=None,
        in_reply_to=target,
        references=refs,
        to=to,
        cc=cc,
        subject=reply_subject(subject),
        body="\n\n".join(parts) + "\n",
        digest=draft_digest("success", target, []),
    )
