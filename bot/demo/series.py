"""The project's own series generator: real edits to a linux-source-6.12 tree, mailed.

Each patch is a list of exact text replacements; `write_series` commits them
in a worktree and returns `git format-patch --cover-letter --thread` mails,
ready to post to a public-inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.core.runner import Runner


@dataclass(frozen=True)
class Edit:
    path: str
    old: str
    new: str


@dataclass(frozen=True)
class DemoPatch:
    subject: str
    body: str
    edits: tuple[Edit, ...]


@dataclass
class MailedSeries:
    base: str
    commits: list[str]
    mails: list[bytes]  # cover letter first
    msgids: list[str] = field(default_factory=list)


# The demo: three mm patches. Patch 2 calls folio_migrate_flags(), declared
# only under CONFIG_MIGRATION (no stub), from mm/filemap.c which is always
# built: it breaks only MIGRATION=n builds, the kind of bug that took random
# configs hours to find. Patch 3 leaves a variable set but unused (W=1).
DEMO_PATCHES: tuple[DemoPatch, ...] = (
    DemoPatch(
        "mm/mempool: document that mempool_resize() may sleep",
        "Spell out in the comment why mempool_resize() must not be called\nfrom atomic context.",
        (
            Edit(
                "mm/mempool.c",
                "\tBUG_ON(new_min_nr <= 0);\n\tmight_sleep();\n",
                "\tBUG_ON(new_min_nr <= 0);\n\t/* allocates with GFP_KERNEL below */\n"
                "\tmight_sleep();\n",
            ),
        ),
    ),
    DemoPatch(
        "mm/filemap: keep folio flags when replacing a page cache folio",
        "replace_page_cache_folio() drops the old folio's flags on the floor;\n"
        "carry them over to the new folio like migration does.",
        (
            Edit(
                "mm/filemap.c",
                "\tfolio_get(new);\n\tnew->mapping = mapping;\n\tnew->index = offset;\n",
                "\tfolio_get(new);\n\tnew->mapping = mapping;\n\tnew->index = offset;\n"
                "\tfolio_migrate_flags(new, old);\n",
            ),
        ),
    ),
    DemoPatch(
        "mm/mempool: count elements released by mempool_resize()",
        "Prepare for reporting how many elements a shrinking resize frees.",
        (
            Edit(
                "mm/mempool.c",
                "\tvoid *element;\n\tvoid **new_elements;\n\tunsigned long flags;\n",
                "\tvoid *element;\n\tvoid **new_elements;\n\tunsigned long flags;\n"
                "\tint released;\n",
            ),
            Edit(
                "mm/mempool.c",
                "\tif (new_min_nr <= pool->min_nr) {\n",
                "\tif (new_min_nr <= pool->min_nr) {\n\t\treleased = pool->curr_nr - new_min_nr;\n",
            ),
        ),
    ),
)

AUTHOR = "Dev Eloper <dev@example.org>"


# git options for the commits the generator (and the tests) write
GIT_IDENTITY = (
    "-c",
    "user.name=Dev Eloper",
    "-c",
    "user.email=dev@example.org",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "init.defaultBranch=master",
)


def _git(wt: Path, *args: str, input: str | None = None) -> str:
    return _RUNNER.run(
        ["git", *GIT_IDENTITY, *args], cwd=wt, input=input, check=True, name="git"
    ).stdout


_RUNNER = Runner()


def apply_edit(wt: Path, edit: Edit) -> None:
    f = wt / edit.path
    text = f.read_text()
    if edit.old not in text:
        raise ValueError(f"{edit.path}: the text to replace is not in this tree: {edit.old[:60]!r}")
    f.write_text(text.replace(edit.old, edit.new, 1))


def write_series(
    wt: Path,
    patches: tuple[DemoPatch, ...] | list[DemoPatch],
    *,
    list_address: str = "linux-mm@kvack.org",
    cover_subject: str = "mm: page cache and mempool fixes",
    cover_body: str = "A few small mm changes.",
    version: int = 1,
    msgid_domain: str = "example.org",
) -> MailedSeries:
    """Commit `patches` on the worktree's HEAD and return the mailed series."""
    base = _git(wt, "rev-parse", "HEAD").strip()
    commits = []
    for p in patches:
        for e in p.edits:
            apply_edit(wt, e)
        _git(wt, "add", "-A")
        _git(
            wt,
            "commit",
            "-q",
            "--author",
            AUTHOR,
            "-F",
            "-",
            input=f"{p.subject}\n\n{p.body}\n\nSigned-off-by: {AUTHOR}\n",
        )
        commits.append(_git(wt, "rev-parse", "HEAD").strip())
    stem = f"{base[:8]}-{commits[-1][:8]}-v{version}"
    prefix = f"PATCH v{version}" if version > 1 else "PATCH"
    args = [
        "format-patch",
        "--stdout",
        "--thread=shallow",
        "--base",
        base,
        f"--to={list_address}",
        f"--subject-prefix={prefix}",
    ]
    many = len(patches) > 1
    if many:
        args.append("--cover-letter")
    out = _git(wt, *args, f"{base}..HEAD")
    chunks = out.split("\nFrom ")
    raw = [chunks[0]] + ["From " + c for c in chunks[1:]]
    mails: list[bytes] = []
    msgids: list[str] = []
    root = f"<{stem}-0@{msgid_domain}>"
    for i, m in enumerate(raw):
        mid = f"<{stem}-{i if many else 1}@{msgid_domain}>"
        lines = m.split("\n")
        if lines and lines[0].startswith("From "):
            lines = lines[1:]  # the mbox separator: posted mail starts with headers
        hdr_end = lines.index("")
        headers = [
            ln
            for ln in lines[:hdr_end]
            if not ln.startswith(("Message-Id:", "Message-ID:", "In-Reply-To:", "References:"))
        ]
        headers.append(f"Message-ID: {mid}")
        if many and i > 0:
            headers += [f"In-Reply-To: {root}", f"References: {root}"]
        if many and i == 0:
            body = "\n".join(lines[hdr_end:])
            body = body.replace("*** BLURB HERE ***", cover_body)
            headers = [h.replace("*** SUBJECT HERE ***", cover_subject) for h in headers]
            lines = lines[:hdr_end] + body.split("\n")
        mails.append(("\n".join(headers + lines[hdr_end:])).encode())
        msgids.append(mid.strip("<>"))
    return MailedSeries(base=base, commits=commits, mails=mails, msgids=msgids)
