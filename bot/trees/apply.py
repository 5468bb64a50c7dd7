"""Base selection and applying a series in a worktree slot, one commit per patch.

Failure is a result: an ApplyResult that names the patch, file and hunk, the
bases tried and git's own words; it never raises for a patch that does not
apply.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.core.models import AppliedPatch, ApplyResult, BaseAttempt, PatchMail, Series
from bot.trees.fetchsha import fetch_commit
from bot.trees.maintainers import TreeHint, parse_maintainers, tree_hints
from bot.trees.patchsafety import diff_of_mail, parse_am_failure, patch_paths, unsafe_reason
from bot.trees.repo import Repo, Slot, tree_ref
from config.settings import ListSettings, Settings

log = logging.getLogger("lorebot.apply")

# (series, repo) -> (tree, branch, sha) or None: b4's blob-based guess
BaseGuess = Callable[[Series, Repo], "tuple[str, str, str] | None"]


@dataclass(frozen=True)
class Candidate:
    how: str
    tree: str
    branch: str
    sha: str
    note: str = ""  # how we came to have it (a base fetched by sha: from where)


#: Bases the author named: a failure on one of them is the author's to hear.
CERTAIN_BASES = frozenset({"base-commit", "subject-tag"})
#: Bases on configured branches: missing only when the branch is not synced (ours).
_CONFIGURED_BASES = frozenset({"subject-tag", "maintainers", "branch", "fallback"})


def tag_target(
    tag_map: dict[str, str], tags: tuple[str, ...], default_tree: str
) -> list[tuple[str, str]]:
    """(tree, branch) for each subject tag the map knows, in the order of the tags."""
    out = []
    lowered = {k.lower(): v for k, v in tag_map.items()}
    for tag in tags:
        target = lowered.get(tag.lower())
        if not target:
            continue
        tree, _, branch = target.partition("/")
        out.append((tree, branch) if branch else (default_tree, tree))
    return out


def base_candidates(
    series: Series, lst: ListSettings | None, settings: Settings, repo: Repo
) -> tuple[list[Candidate], list[BaseAttempt], list[BaseAttempt]]:
    """Bases to try in order, the attempts that failed before applying anything, and the
    MAINTAINERS trees of the series' files that are not configured here."""
    cands: list[Candidate] = []
    failed: list[BaseAttempt] = []
    unconfigured: list[BaseAttempt] = []

    def consider(
        how: str,
        tree: str,
        branch: str,
        sha: str | None,
        missing: str,
        asked: str = "",
        note: str = "",
    ) -> None:
        if sha:
            cands.append(Candidate(how, tree, branch, sha, note))
        else:
            failed.append(
                BaseAttempt(
                    how=how, tree=tree, branch=branch, sha=asked, reason=missing, missing=True
                )
            )

    list_trees = list(lst.trees) if lst else [t.name for t in settings.trees]
    default_tree = list_trees[0] if list_trees else ""
    if series.base_commit:
        sha = repo.resolve(series.base_commit)
        tree, branch = (repo.trees_containing(sha) or [(default_tree, "")])[0] if sha else ("", "")
        missing = f"base-commit {series.base_commit[:12]} is in no configured tree"
        note = ""
        if not sha and settings.base.fetch_by_sha:
            tree, sha, missing = _fetch_base(series.base_commit, list_trees, settings, repo, failed)
            note = f"fetched by sha from {tree}" if sha else ""
        consider("base-commit", tree, branch, sha, missing, series.base_commit, note)
    for tree, branch in tag_target(settings.base.subject_tags, series.subject_tags, default_tree):
        consider(
            "subject-tag",
            tree,
            branch,
            repo.branch_sha(tree, branch),
            f"{tree_ref(tree, branch)} not synced",
        )
    if settings.base.maintainers:
        for hint in maintainers_hints(series, list_trees, settings, repo):
            if not hint.tree:
                unconfigured.append(
                    BaseAttempt(
                        how="maintainers",
                        tree="",
                        branch=hint.branch,
                        reason=f"MAINTAINERS ({hint.entry}) names {hint.url}, "
                        "which is not a configured tree",
                        missing=True,
                    )
                )
                continue
            for branch in _branches(settings, repo, hint.tree, hint.branch):
                consider(
                    "maintainers",
                    hint.tree,
                    branch,
                    repo.branch_sha(hint.tree, branch),
                    f"{tree_ref(hint.tree, branch)} not synced (MAINTAINERS: {hint.entry})",
                )
    for tree in list_trees:
        for branch in _branches(settings, repo, tree):
            consider(
                "branch",
                tree,
                branch,
                repo.branch_sha(tree, branch),
                "branch not synced (run `lorebot tree sync`)",
            )
    for target in settings.base.fallbacks:
        tree, _, branch = target.partition("/")
        consider(
            "fallback",
            tree,
            branch,
            repo.branch_sha(tree, branch),
            f"{tree_ref(tree, branch)} not synced",
        )
    seen: set[str] = set()
    unique = []
    for c in cands:
        if c.sha not in seen:
            seen.add(c.sha)
            unique.append(c)
    return unique, failed, unconfigured


def _branches(settings: Settings, repo: Repo, tree: str, named: str = "") -> list[str]:
    """The branches of `tree` to try: the one a MAINTAINERS line names when the tree has
    it, else the configured ones (or, for a tree not in the settings, the synced ones)."""
    try:
        branches = list(settings.tree(tree).branches)
    except KeyError:
        branches = []
    branches = branches or repo.branches(tree)
    return [named] if named and named in branches else branches


def _fetch_base(
    sha: str, list_trees: list[str], settings: Settings, repo: Repo, failed: list[BaseAttempt]
) -> tuple[str, str | None, str]:
    """Fetch a base-commit by sha, the list's trees first; (tree, sha or None, why not)."""
    order = [*list_trees, *(t.name for t in settings.trees if t.name not in list_trees)]
    trees = [settings.tree(n) for n in order if any(t.name == n for t in settings.trees)]
    got, tries = fetch_commit(repo, sha, trees, settings.network)
    for t in tries:
        if not t.ok:
            failed.append(
                BaseAttempt(
                    how="base-commit-fetch",
                    tree=t.tree,
                    sha=sha,
                    reason=f"not fetched by sha: {t.reason}",
                    missing=True,
                )
            )
    if got:
        return got, repo.resolve(sha), ""
    return "", None, f"base-commit {sha[:12]} is in no configured tree, nor fetchable by sha"


def not_ours(tried: list[BaseAttempt], unconfigured: list[BaseAttempt]) -> str:
    """Why a series that applies nowhere is not ours to check: its files' MAINTAINERS
    trees are all unconfigured here ("" when a configured one was among the bases)."""
    if not unconfigured or any(a.how == "maintainers" for a in tried):
        return ""
    return "applies to no configured tree; " + "; ".join(a.reason for a in unconfigured)


def series_paths(series: Series) -> list[str]:
    """The files the series' patches touch, in order, once each."""
    paths: dict[str, None] = {}
    for p in series.patches:
        for path in patch_paths(diff_of_mail(p.mbox)):
            paths.setdefault(path, None)
    return list(paths)


def maintainers_hints(
    series: Series, list_trees: list[str], settings: Settings, repo: Repo
) -> list[TreeHint]:
    """The MAINTAINERS trees of the series' files, read from the list's first synced base."""
    text = ""
    for tree in list_trees:
        for branch in _branches(settings, repo, tree):
            sha = repo.branch_sha(tree, branch)
            if sha:
                text = _maintainers_text(repo, sha)
                break
        if text:
            break
    if not text:
        return []
    return tree_hints(parse_maintainers(text), series_paths(series), list(settings.trees))


def _maintainers_text(repo: Repo, sha: str) -> str:
    r = repo.g.run("cat-file", "blob", f"{sha}:MAINTAINERS", timeout=60, name="maintainers")
    return r.stdout if r.ok else ""


@dataclass(frozen=True)
class _Outcome:
    commits: list[str | None]
    failed_index: int | None  # 0-based into the patch list
    message: str
    file: str
    hunk: str


def _apply_all(slot: Slot, patches: list[PatchMail], timeout: float) -> _Outcome:
    commits: list[str | None] = [None] * len(patches)
    with tempfile.TemporaryDirectory(prefix="lorebot-am-") as tmp:
        for i, p in enumerate(patches):
            mbox = Path(tmp) / f"{i + 1:04d}.eml"
            mbox.write_bytes(p.mbox)
            ok, out = slot.run_git(
                "am", "-3", "--no-gpg-sign", str(mbox), timeout=timeout, name=f"am-{i + 1}"
            )
            if not ok:
                fail = parse_am_failure(out, diff_of_mail(p.mbox))
                slot.run_git("am", "--abort", name="am-abort")
                where = f" at {fail.file}" + (f":{fail.line}" if fail.line else "")
                msg = (
                    f"patch {p.index} ({p.subject}, <{p.msgid}>) does not apply"
                    f"{where if fail.file else ''}"
                )
                return _Outcome(commits, i, msg + "\n" + fail.words, fail.file, fail.hunk)
            commits[i] = slot.head()
    return _Outcome(commits, None, "", "", "")


def apply_series(
    settings: Settings,
    repo: Repo,
    slot: Slot,
    series: Series,
    lst: ListSettings | None,
    parent: Series | None = None,
    guess: BaseGuess | None = None,
) -> ApplyResult:
    """Pick the base and apply the series (after its parent's patches for a follow-up)."""
    own = list(series.patches)
    inherited = list(parent.patches) if parent else []
    patches = [*inherited, *own]
    numbered = [p.model_copy(update={"index": i}) for i, p in enumerate(patches, start=1)]

    def listing(commits: list[str | None]) -> tuple[AppliedPatch, ...]:
        return tuple(
            AppliedPatch(
                index=p.index,
                msgid=p.msgid,
                subject=p.subject,
                commit=c,
                parent_patch=i < len(inherited),
            )
            for i, (p, c) in enumerate(zip(numbered, commits, strict=True))
        )

    none: list[str | None] = [None] * len(numbered)
    for p in numbered:
        diff = diff_of_mail(p.mbox)
        reason = (
            "no diff found in the patch mail"
            if not diff.strip()
            else unsafe_reason(diff, settings.apply.max_diff_bytes)
        )
        if reason:
            return ApplyResult(
                ok=False,
                patches=listing(none),
                failed_patch=p.index,
                message=f"patch {p.index} ({p.subject}, <{p.msgid}>) refused: {reason}",
            )
    base_from = parent or series
    cands, tried, unconfigured = base_candidates(base_from, lst, settings, repo)
    best: tuple[Candidate, _Outcome] | None = None
    certain = False  # a base the author named was tried and failed
    guessed = False
    while True:
        for cand in cands:
            slot.reset(cand.sha)
            outcome = _apply_all(slot, numbered, settings.apply.timeout)
            if outcome.failed_index is None:
                tried.append(
                    BaseAttempt(
                        how=cand.how,
                        tree=cand.tree,
                        branch=cand.branch,
                        sha=cand.sha,
                        ok=True,
                        reason=f"applied ({cand.note})" if cand.note else "applied",
                    )
                )
                return ApplyResult(
                    ok=True,
                    tree=cand.tree,
                    branch=cand.branch,
                    base=cand.sha,
                    worktree=str(slot.path),
                    patches=listing(outcome.commits),
                    tried=tuple(tried),
                    message="",
                )
            tried.append(
                BaseAttempt(
                    how=cand.how,
                    tree=cand.tree,
                    branch=cand.branch,
                    sha=cand.sha,
                    reason=outcome.message.splitlines()[0]
                    + (f" ({cand.note})" if cand.note else ""),
                )
            )
            certain = certain or cand.how in CERTAIN_BASES
            if best is None or outcome.failed_index > (best[1].failed_index or 0):
                best = (cand, outcome)
        if guessed or guess is None or not settings.base.b4_guess:
            break
        guessed = True
        g = guess(base_from, repo)
        if g is None:
            tried.append(BaseAttempt(how="b4-guess", tree="", reason="no matching blobs found"))
            break
        if g[2] in {a.sha for a in tried}:
            tried.append(
                BaseAttempt(
                    how="b4-guess",
                    tree=g[0],
                    branch=g[1],
                    sha=g[2],
                    reason="the blobs point to a base already tried",
                )
            )
            break
        cands = [Candidate("b4-guess", g[0], g[1], g[2])]
    if best is None:
        unsynced = [
            f"{a.tree}/{a.branch}"
            for a in tried
            if a.missing and a.tree and a.how in _CONFIGURED_BASES
        ]
        return ApplyResult(
            ok=False,
            patches=listing(none),
            tried=tuple(tried),
            fault=(
                f"no base to apply on: {', '.join(unsynced)} not synced"
                if unsynced
                else ""
                if tried
                else "no tree is configured for this list"
            ),
            message="no base to apply on: "
            + "; ".join(f"{a.how} {a.tree}/{a.branch}: {a.reason}" for a in tried)
            if tried
            else "no base to apply on: no tree configured for this list",
        )
    cand, outcome = best
    failed = numbered[outcome.failed_index or 0]
    skipped = "" if certain else not_ours(tried, unconfigured)
    if skipped:  # the page shows which trees MAINTAINERS named
        tried = [*unconfigured, *tried]
    return ApplyResult(
        skipped=skipped,
        ok=False,
        tree=cand.tree,
        branch=cand.branch,
        base=cand.sha,
        worktree=str(slot.path),
        patches=listing(outcome.commits),
        failed_patch=failed.index,
        tried=tuple(tried),
        message=outcome.message,
        failed_file=outcome.file,
        failed_hunk=outcome.hunk,
        base_certain=certain,
    )
