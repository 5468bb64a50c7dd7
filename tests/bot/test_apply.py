"""Base selection and applying, on a small real git repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.models import ApplyResult, Series
from bot.trees.apply import apply_series
from bot.trees.repo import Repo, Slot, acquire_slot
from config.settings import Settings
from tests.support.gitrepo import SmallRepo, git, series_from_mails, small_tree_settings, synced


@pytest.fixture
def work(tmp_path: Path) -> SmallRepo:
    repo = SmallRepo(tmp_path / "upstream")
    # a second branch "next" that moved on: alpha_3 changed, so patches against
    # master's alpha_3 do not apply there
    git(repo.path, "checkout", "-qb", "next")
    repo.commit(
        "next: change alpha_3",
        {"mm/alpha.c": repo.edit("mm/alpha.c", "\treturn 3;\n", "\treturn 33;\n")},
    )
    git(repo.path, "checkout", "-q", "master")
    return repo


def _apply(
    settings: Settings, repo: Repo, series: Series, parent: Series | None = None
) -> ApplyResult:
    with acquire_slot(repo, settings.paths.cache, 1) as slot:
        return apply_series(settings, repo, slot, series, settings.lists[0], parent=parent)


def test_applies_on_base_commit_and_records_each_commit(tmp_path: Path, work: SmallRepo) -> None:
    base = work.head()
    git(work.path, "checkout", "-qb", "topic")
    work.commit("mm: alpha 1", {"mm/alpha.c": work.edit("mm/alpha.c", "return 1;", "return -1;")})
    work.commit("mm: beta", {"mm/beta.c": work.edit("mm/beta.c", "return 0;", "return 2;")})
    series = series_from_mails(work.mails(base), base_commit=base)
    settings = small_tree_settings(tmp_path, work.path, ["next", "master"])
    result = _apply(settings, synced(settings), series)
    assert result.ok, result.message
    assert result.base == base and result.branch == "master" and result.tree == "small"
    assert [a.how for a in result.tried] == ["base-commit"]
    assert all(p.commit for p in result.patches)
    wt = Path(result.worktree)
    assert "return 2;" in (wt / "mm/beta.c").read_text()
    assert git(wt, "rev-parse", "HEAD").strip() == result.patches[-1].commit
    assert git(wt, "rev-parse", "HEAD~2").strip() == base


def test_falls_through_branches_in_order_and_records_tries(tmp_path: Path, work: SmallRepo) -> None:
    base = work.head()
    git(work.path, "checkout", "-qb", "topic")
    work.commit("mm: alpha 3", {"mm/alpha.c": work.edit("mm/alpha.c", "return 3;", "return 0;")})
    series = series_from_mails(work.mails(base)).model_copy(update={"base_commit": None})
    settings = small_tree_settings(tmp_path, work.path, ["next", "master"])
    result = _apply(settings, synced(settings), series)
    assert result.ok
    assert [(a.how, a.branch, a.ok) for a in result.tried] == [
        ("branch", "next", False),
        ("branch", "master", True),
    ]
    assert "does not apply" in result.tried[0].reason


def test_subject_tag_maps_to_branch(tmp_path: Path, work: SmallRepo) -> None:
    git(work.path, "checkout", "-q", "next")
    base = work.head()
    work.commit("mm: alpha 33", {"mm/alpha.c": work.edit("mm/alpha.c", "return 33;", "return 4;")})
    series = series_from_mails(work.mails(base), tags=("small-next",))
    series = series.model_copy(update={"base_commit": None})
    settings = small_tree_settings(
        tmp_path, work.path, ["master", "next"], {"small-next": "small/next"}
    )
    result = _apply(settings, synced(settings), series)
    assert result.ok
    assert result.tried[0].how == "subject-tag" and result.branch == "next"


def test_cannot_apply_names_patch_file_hunk_and_bases(tmp_path: Path, work: SmallRepo) -> None:
    base = work.head()
    git(work.path, "checkout", "-qb", "topic")
    work.commit("mm: beta first", {"mm/beta.c": work.edit("mm/beta.c", "return 0;", "return 5;")})
    work.commit("mm: alpha 7", {"mm/alpha.c": work.edit("mm/alpha.c", "return 7;", "return 70;")})
    mails = work.mails(base)
    # corrupt the context of the second patch, as a stale base would
    mails[1] = mails[1].replace(b" int alpha_7(void)", b" int alpha_7(long x)")
    series = series_from_mails(mails).model_copy(update={"base_commit": None})
    settings = small_tree_settings(tmp_path, work.path, ["master", "next"])
    result = _apply(settings, synced(settings), series)
    assert not result.ok
    assert result.failed_patch == 2
    assert result.failed_file == "mm/alpha.c"
    assert "alpha_7(long x)" in result.failed_hunk
    assert "p2@example.org" in result.message and "mm: alpha 7" in result.message
    assert result.patches[0].commit and result.patches[1].commit is None
    assert [a.branch for a in result.tried] == ["master", "next"]


def test_follow_up_goes_on_top_of_parent(tmp_path: Path, work: SmallRepo) -> None:
    base = work.head()
    git(work.path, "checkout", "-qb", "topic")
    work.commit("mm: alpha 1", {"mm/alpha.c": work.edit("mm/alpha.c", "return 1;", "return 10;")})
    parent = series_from_mails(work.mails(base), base_commit=base)
    mid = work.head()
    work.commit("mm: fixup", {"mm/alpha.c": work.edit("mm/alpha.c", "return 10;", "return 11;")})
    follow = series_from_mails(work.mails(mid)).model_copy(
        update={"parent": parent.msgid, "msgid": "f1@example.org"}
    )
    settings = small_tree_settings(tmp_path, work.path, ["master"])
    result = _apply(settings, synced(settings), follow, parent=parent)
    assert result.ok
    assert [(p.index, p.parent_patch) for p in result.patches] == [(1, True), (2, False)]
    assert "return 11;" in (Path(result.worktree) / "mm/alpha.c").read_text()


HOSTILE = {
    "outside": "diff --git a/../evil b/../evil\nnew file mode 100644\n--- /dev/null\n"
    "+++ b/../evil\n@@ -0,0 +1 @@\n+x\n",
    "dotgit": "diff --git a/.git/hooks/post-applypatch b/.git/hooks/post-applypatch\n"
    "new file mode 100755\n--- /dev/null\n+++ b/.git/hooks/post-applypatch\n"
    "@@ -0,0 +1 @@\n+touch /tmp/pwned\n",
    "symlink": "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n"
    "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
    # the same link, spelled as git also reads it: leading zeros, a trailing space, and an
    # existing link retargeted (the mode only on the index line)
    "symlink-zeros": "diff --git a/link b/link\nnew file mode 0120000\n--- /dev/null\n"
    "+++ b/link\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
    "symlink-space": "diff --git a/link b/link\nnew file mode 120000 \n--- /dev/null\n"
    "+++ b/link\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n",
    "symlink-retarget": "diff --git a/tools/link b/tools/link\nindex 1234567..89abcde 120000\n"
    "--- a/tools/link\n+++ b/tools/link\n@@ -1 +1 @@\n-../mm/alpha.c\n"
    "\\ No newline at end of file\n+/etc/shadow\n\\ No newline at end of file\n",
    "binary": "diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex 0000000..1111111\n"
    "GIT binary patch\nliteral 3\nKcmZ?wbYTDh\n\nliteral 0\nKcmV+b0RR6000031\n",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_patches_are_refused(tmp_path: Path, work: SmallRepo, kind: str) -> None:
    mail = (
        f"From: Eve <eve@example.org>\nSubject: [PATCH] {kind}\n"
        "Message-ID: <evil@example.org>\n\nevil\n---\n" + HOSTILE[kind]
    ).encode()
    series = series_from_mails([mail])
    settings = small_tree_settings(tmp_path, work.path, ["master"])
    result = _apply(settings, synced(settings), series)
    assert not result.ok and result.failed_patch == 1
    assert "refused" in result.message
    assert not (tmp_path / "evil").exists() and not Path("/tmp/pwned").exists()


def test_oversized_patch_is_refused(tmp_path: Path, work: SmallRepo) -> None:
    base = work.head()
    big = "".join(f"int big_{i};\n" for i in range(200_000))
    work.commit("mm: huge", {"mm/huge.c": big})
    series = series_from_mails(work.mails(base))
    settings = small_tree_settings(tmp_path, work.path, ["master"])
    settings = settings.model_copy(
        update={"apply": settings.apply.model_copy(update={"max_diff_bytes": 1024 * 1024})}
    )
    result = _apply(settings, synced(settings), series)
    assert not result.ok and "limit" in result.message


def test_slot_is_stable_and_cleaned_after_a_crash(tmp_path: Path, work: SmallRepo) -> None:
    settings = small_tree_settings(tmp_path, work.path, ["master"])
    repo = synced(settings)
    sha = repo.branch_sha("small", "master")
    assert sha
    slot = Slot(repo, settings.paths.cache / "slots" / "0")
    slot.reset(sha)
    # a crash leaves junk, an edit and a half-done am behind
    (slot.path / "junk.o").write_text("x")
    (slot.path / "mm/beta.c").write_text("garbage")
    (slot.path / ".git").read_text()  # a worktree's .git is a file
    slot.reset(sha)
    assert not (slot.path / "junk.o").exists()
    assert "return 0;" in (slot.path / "mm/beta.c").read_text()
    assert slot.head() == sha


def test_b4_blob_guess_finds_an_older_base(tmp_path: Path, work: SmallRepo) -> None:
    from bot.intake.b4adapter import guess_base

    base = work.head()
    git(work.path, "checkout", "-qb", "topic")
    work.commit("mm: alpha 5", {"mm/alpha.c": work.edit("mm/alpha.c", "return 5;", "return 50;")})
    series = series_from_mails(work.mails(base)).model_copy(update={"base_commit": None})
    # master moves on and touches the same lines: the patch no longer applies at its tip
    git(work.path, "checkout", "-q", "master")
    work.commit(
        "mm: alpha 5 differently",
        {"mm/alpha.c": work.edit("mm/alpha.c", "return 5;", "return 55;")},
    )
    settings = small_tree_settings(tmp_path, work.path, ["master"])
    repo = synced(settings)
    with acquire_slot(repo, settings.paths.cache, 1) as slot:
        result = apply_series(settings, repo, slot, series, settings.lists[0], guess=guess_base)
    assert result.ok, result.message
    assert [(a.how, a.ok) for a in result.tried] == [("branch", False), ("b4-guess", True)]
    assert result.base == base
