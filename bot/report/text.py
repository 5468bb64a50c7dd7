"""The text of a reply: prose wrapped at 72 columns, diagnostics verbatim.

Pure functions from findings and the apply result to plain text, in the
kernel's mail conventions (no HTML, no markup, commands and compiler output
quoted exactly as they were run and printed).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.models import ApplyResult, BaseAttempt, PatchMail, Series
from bot.core.results import (
    Coverage,
    Finding,
    Uncompiled,
    line_ranges,
    normalize_message,
    severity_rank,
)

WIDTH = 72
SHORT_SHA = 12
_HOW = {
    "base-commit": "from the base-commit: trailer",
    "subject-tag": "from the subject tag",
    "branch": "the list's default branch",
    "b4-guess": "guessed by b4 from the blobs",
    "maintainers": "the tree MAINTAINERS names for the files",
    "fallback": "a fallback tree",
    "base-commit-fetch": "the base-commit: fetched by sha",
}


@dataclass(frozen=True)
class Problem:
    """One cause as reported: the same diagnostic in one file, seen in one or more configs,
    on one or more lines, by one or more checks (the build error a semantic finding
    predicts is the same item)."""

    first: Finding
    configs: tuple[str, ...]
    lines: tuple[int, ...] = ()  # every line of `first.file` it is on
    checks: tuple[str, ...] = ()
    others: tuple[Finding, ...] = ()  # more diagnostics of the same cause, shown with it
    fingerprints: tuple[str, ...] = ()  # of every finding this item stands for

    @property
    def sort_key(self) -> tuple[int, str, int, str]:
        f = self.first
        return (severity_rank(f.severity), f.file, f.line or 0, f.message)


def group_findings(findings: Sequence[Finding]) -> list[Problem]:
    """One item per cause, worst first: findings of one patch with one message in one
    file (line numbers and the check left out) are one problem; a build finding leads,
    since it carries the config and the commands to reproduce it."""
    by_key: dict[tuple[int | None, str, str], list[Finding]] = {}
    for f in findings:
        by_key.setdefault((f.patch, f.file, _cause(f)), []).append(f)
    problems = []
    for same in by_key.values():
        same.sort(key=lambda f: (f.check != "build", f.line or 0))
        configs = tuple(dict.fromkeys(c for c in (config_name(f) for f in same) if c))
        lines = tuple(sorted({f.line for f in same if f.line}))
        checks = tuple(dict.fromkeys(f.check for f in same))
        prints = tuple(dict.fromkeys(f.fingerprint for f in same))
        problems.append(
            Problem(first=same[0], configs=configs, lines=lines, checks=checks, fingerprints=prints)
        )
    return sorted(_one_comment_one_item(problems), key=lambda p: p.sort_key)


def _cause(f: Finding) -> str:
    """What makes two findings one item: the message without what varies; for kernel-doc,
    every comment it "cannot understand" in a file is one habit (e.g. doxygen's @brief)."""
    if f.check == "kernel-doc" and f.message.startswith("Cannot understand"):
        return "Cannot understand"
    return normalize_message(f.message)


def _one_comment_one_item(problems: list[Problem]) -> list[Problem]:
    """kernel-doc's warnings on one line are about one comment (a renamed parameter is
    both "not described" and "excess"): one item, every diagnostic shown."""
    out: list[Problem] = []
    at: dict[tuple[int | None, str, int | None], int] = {}
    for p in problems:
        f = p.first
        key = (f.patch, f.file, f.line)
        if f.check != "kernel-doc" or not f.line or key not in at:
            if f.check == "kernel-doc" and f.line:
                at[key] = len(out)
            out.append(p)
            continue
        lead = out[at[key]]
        out[at[key]] = Problem(
            first=lead.first,
            configs=lead.configs,
            lines=lead.lines,
            checks=lead.checks,
            others=(*lead.others, f, *p.others),
            fingerprints=tuple(dict.fromkeys((*lead.fingerprints, *p.fingerprints))),
        )
    return out


def wrap(text: str) -> str:
    """Prose wrapped at 72 columns, paragraph by paragraph; long words are not broken."""
    paras = [" ".join(p.split()) for p in text.split("\n\n")]
    return "\n\n".join(
        textwrap.fill(p, WIDTH, break_long_words=False, break_on_hyphens=False) for p in paras if p
    )


def item(first: str, text: str, indent: str = "  ") -> str:
    """One list item wrapped at 72 columns: `first` then the text, continued under it."""
    return textwrap.fill(
        " ".join(text.split()),
        WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def config_name(f: Finding) -> str:
    """'x86_64 defconfig MIGRATION=n', with ', W=1' when the build ran with W=1."""
    name = " ".join(x for x in (f.arch, f.config) if x)
    if name and any(" W=1" in f" {cmd}" for cmd in f.reproduce):
        name += ", W=1"
    return name


def title(f: Finding) -> str:
    """What broke, as a heading: 'Build error', 'Use of a removed struct member', ..."""
    if f.check == "build":
        return f"Build {f.severity}"
    if f.title:
        return f.title[:1].upper() + f.title[1:]
    return f"{f.check} {f.severity}".strip()


def where(f: Finding) -> str:
    """'file:line' (or just the file, or nothing)."""
    if f.file and f.line:
        return f"{f.file}:{f.line}"
    return f.file


def headline(p: Problem) -> str:
    """One line for a list of problems: 'Build error in mm/foo.c:123 (x86_64 ...)'."""
    f = p.first
    text = title(f)
    if where(f):
        text += f" in {where(f)}"
    if p.configs:
        text += f" ({'; '.join(p.configs)})"
    return text


def diagnostic(f: Finding) -> str:
    """The diagnostic in the compiler's own format: 'file:line:col: error: message [-Wopt]'."""
    loc = f.file
    if f.file and f.line:
        loc += f":{f.line}"
        if f.column:
            loc += f":{f.column}"
    sev = f"{f.severity}: " if f.check in ("build", "kernel-doc") and f.severity else ""
    text = f"{loc}: {sev}{f.message}" if loc else f"{sev}{f.message}"
    return f"{text} [{f.option}]" if f.option else text


def fragment(f: Finding) -> str:
    """The config fragment: given by the check, else made from the changed symbols."""
    if f.config_fragment.strip():
        return f.config_fragment.strip("\n")
    lines = []
    for sym, val in f.symbols.items():
        name = sym if sym.startswith("CONFIG_") else f"CONFIG_{sym}"
        lines.append(f"# {name} is not set" if val == "n" else f"{name}={val}")
    return "\n".join(lines)


def apply_commands(
    series: Series,
    applied: ApplyResult,
    upto: int | None,
    tree_url: str = "",
    parent: Series | None = None,
) -> list[str]:
    """Commands that rebuild the tested tree: the base, then the series up to a patch;
    for a follow-up, the series it goes on top of, then the follow-up."""
    cmds = []
    if tree_url and applied.branch:
        cmds.append(f"git fetch {tree_url} {applied.branch}")
    if applied.base:
        cmds.append(f"git checkout -b lorebot-check {applied.base}")
    if parent is None:
        cmds.append(_shazam(series, upto))
        return cmds
    # `b4 shazam <follow-up>` applies the thread's series, not the follow-up, and `-P _`
    # alone fetches only the follow-up, where b4 finds no series: give it the thread
    followup = series.patches[0].msgid
    cmds.append(_shazam(parent, None))
    cmds.append(f"b4 mbox -o - {followup} | b4 shazam -m - -P _ {followup}")
    return cmds


def _shazam(series: Series, upto: int | None) -> str:
    b4 = ["b4", "shazam"]
    if series.version > 1:
        b4 += ["-v", str(series.version)]
    if upto is not None and upto < series.total:
        b4 += ["-P", "1" if upto == 1 else f"1-{upto}"]
    return " ".join([*b4, series.msgid])


def problem_section(
    p: Problem,
    n: int,
    total: int,
    series: Series,
    applied: ApplyResult,
    tree_url: str = "",
    parent: Series | None = None,
) -> str:
    """The account of one problem: diagnostic, source, configs, why, how to reproduce."""
    f = p.first
    parts = [item(f"[{n}/{total}] ", headline(p), "      ")] if total > 1 else []
    parts.append("\n".join([diagnostic(f), *(diagnostic(o) for o in p.others)]))
    if f.excerpt.strip():
        parts.append(f.excerpt.strip("\n"))
    elif f.source_line.strip() and f.line:
        parts.append(f"> {f.line}\t{f.source_line.rstrip()}")
    facts = []
    if p.configs:
        label = "Config:  " if len(p.configs) == 1 else "Configs: "
        facts.append(f"{label} {'; '.join(p.configs)}")
    elif f.check == "semantic":
        # a build error predicted from the source: say that no build saw it (style and
        # documentation findings have no config to name)
        facts.append("Config:   not built by any tested config; found by reading the source")
    if f.compiler:
        facts.append(f"Compiler: {f.compiler}")
    if facts:
        parts.append("\n".join(facts))
    others = [n for n in p.lines if n != f.line]
    if others:
        parts.append(
            wrap(
                f"The same in {f.file} at line{'s' if len(others) > 1 else ''} "
                f"{', '.join(map(str, others))}."
            )
        )
    if len(p.checks) > 1:
        parts.append(wrap(f"Found by the {' and the '.join(p.checks)} checks."))
    if f.detail.strip():  # one fact a line: where, in which function, other configs
        lines = [ln.strip() for ln in f.detail.splitlines() if ln.strip()]
        parts.append("\n".join(wrap(ln[:1].upper() + ln[1:]) for ln in lines))
    parts.extend(_reproduce(f, series, applied, tree_url, parent))
    return "\n\n".join(parts)


def _reproduce(
    f: Finding, series: Series, applied: ApplyResult, tree_url: str, parent: Series | None
) -> list[str]:
    frag = fragment(f)
    if not f.reproduce and not frag:
        return []
    upto = f.patch if f.patch is not None else None
    what = applied_text(upto, series.total, followup=parent is not None)
    intro = f"To reproduce, apply {what} on the tested base"
    if not tree_url and applied.base:
        # a tree known here only by a local path: name the commit, never the path
        intro += (
            f" (the tested tree is not public; its base is commit {applied.base[:12]} "
            f"of {applied.tree or 'the tree'})"
        )
    out = [wrap(intro + ":")]
    commands = apply_commands(series, applied, upto, tree_url, parent)
    out.append("\n".join([*commands, *f.reproduce]))
    if frag:
        base_cfg = f"{f.arch} {f.config.split()[0]}" if f.arch and f.config else "the base config"
        out.append(wrap(f"The config differs from {base_cfg} in:"))
        out.append(frag)
    return out


def intro(problems: Sequence[Problem], what: str) -> str:
    """'Checking this patch found a new build error in mm/foo.c:95 (x86_64 ...):'."""
    if len(problems) == 1:
        text = headline(problems[0])
        return wrap(f"Checking {what} found a new {text[:1].lower()}{text[1:]}:")
    return wrap(f"Checking {what} found {count_words(problems)}:")


def describe_attempt(a: BaseAttempt) -> str:
    """'mm/mm-unstable at 1a2b3c4d5e6f (from the base-commit: trailer): reason'."""
    at = f"{a.tree}/{a.branch}" if a.branch else a.tree
    if a.sha:
        # a base-commit found in no tree has no tree to name: the commit is the base
        at = f"{at} at {a.sha[:SHORT_SHA]}" if at else a.sha[:SHORT_SHA]
    how = _HOW.get(a.how, a.how)
    text = f"{at} ({how})" if how else at
    if not a.ok:
        text += f": {a.reason or 'does not apply'}"
    return text


def coverage(uncompiled: Sequence[Uncompiled], measured: Coverage | None = None) -> str:
    """One statement of the patch coverage measured, or, when it was not measured, of what
    no tested config compiled ("" when everything was)."""
    if measured is not None and measured.lines:
        text = (
            f"Build coverage: {measured.covered} of {measured.lines} changed lines of .c/.h "
            f"files ({measured.percent:.1f}%) were compiled in at least one tested config"
        )
        if measured.uncovered:
            shown = [
                f"{u.file}:{line_ranges(u.lines)} ({u.reason})" for u in measured.uncovered[:3]
            ]
            extra = len(measured.uncovered) - 3
            text += f"; not compiled: {', '.join(shown)}"
            text += f" and {extra} more" if extra > 0 else ""
        return wrap(text + ".")
    if not uncompiled:
        return ""
    shown = [f"{u.what} ({u.needs})" if u.needs else u.what for u in uncompiled[:4]]
    more = f" and {len(uncompiled) - 4} more" if len(uncompiled) > 4 else ""
    return wrap(f"Not compiled in any tested config: {', '.join(shown)}{more}.")


def base_section(applied: ApplyResult, upto: int | None, total: int, followup: bool = False) -> str:
    """The tested base (tree, branch, full sha) and the other bases tried."""
    where_ = f"{applied.tree}/{applied.branch}" if applied.branch else applied.tree
    ok = next((a for a in applied.tried if a.ok), None)
    how = f" ({_HOW.get(ok.how, ok.how)})" if ok else ""
    upto_text = applied_text(upto, total, followup)
    text = wrap(f"Tested base: {where_}{how} at {applied.base}, with {upto_text} applied.")
    # a MAINTAINERS tree this bot does not follow is no base it tried: not the author's news
    others = [a for a in applied.tried if not a.ok and (a.tree or a.how != "maintainers")]
    if others:
        text += "\n" + tried_list(others, "Also tried:")
    return text


def applied_text(upto: int | None, total: int, followup: bool = False) -> str:
    """What was applied on the base: 'this patch', 'patches 1-2 of the series', ..."""
    if followup:
        return "the series this patch goes on top of and this patch"
    if total == 1:
        return "this patch"
    if upto is None or upto >= total:
        return "the whole series"
    return "patch 1 of the series" if upto == 1 else f"patches 1-{upto} of the series"


def tried_list(attempts: Sequence[BaseAttempt], heading: str) -> str:
    """A heading and one indented line per base tried (git's reasons verbatim)."""
    return "\n".join([heading, *(f"  {describe_attempt(a)}" for a in attempts)])


def reported_by(reporter: str, closes: str = "") -> str:
    """The tags the author can copy into a separate fix (Closes: links this report)."""
    return (
        wrap("If you fix this in a separate patch (not in a new revision of this one), please add:")
        + f"\n\nReported-by: {reporter}"
        + (f"\nCloses: {closes}" if closes else "")
    )


COMMANDS_LINE = 'Reply "#lorebot invalid <why>" under an item; also: retest, mute'


def footer(series_url: str) -> str:
    """Signature: the series on the status page, and how to talk back (one line)."""
    return f"-- \nlorebot status page: {series_url}\n{COMMANDS_LINE}"


def greeting(name: str) -> str:
    """'Hi Jörg,' from the author's display name ('Rödel, Jörg' too)."""
    if "," in name:
        name = name.partition(",")[2]
    first = name.split()[0] if name.split() else ""
    return f"Hi {first}," if first and "@" not in first else "Hi,"


def patch_label(patch: PatchMail, total: int) -> str:
    """'Patch 2/3: mm/foo: isolate pages' for lists of patches."""
    return f"Patch {patch.index}/{total}: {patch.title or patch.subject}"


def count_words(problems: Sequence[Problem]) -> str:
    """'a build error', '2 problems (1 build error, 1 build warning)'."""
    kinds: dict[str, int] = {}
    for p in problems:
        key = title(p.first).lower()
        kinds[key] = kinds.get(key, 0) + 1
    detail = ", ".join(f"{n} {k}" for k, n in kinds.items())
    return f"{len(problems)} new problems ({detail})"


def bounded(groups: list[list[str]], limit: int) -> list[str]:
    """The groups of lines as blocks, cut to `limit` lines with a pointer to the page."""
    out: list[str] = []
    left = limit
    for i, lines in enumerate(groups):
        if len(lines) > left:
            rest = sum(len(g) for g in groups[i:]) - max(left - 1, 0)
            out.append(
                "\n".join(
                    [*lines[: max(left - 1, 0)], f"  ... and {rest} more lines on the status page"]
                )
            )
            break
        out.append("\n".join(lines))
        left -= len(lines)
    return out
