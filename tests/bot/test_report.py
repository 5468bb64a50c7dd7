"""Rendering replies: threading, recipients, subjects, digests, text layout.

Values built by hand from real kernel content, in tests/support/replies.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.models import PatchMail
from bot.report.headers import clean_header, recipients, reply_subject, split_addresses
from bot.report.render import render_replies
from bot.report.text import COMMANDS_LINE, WIDTH, greeting
from tests.support.replies import (
    CC,
    COVER,
    LINUS,
    LISTS,
    SERIES_URL,
    applied_on_iommu,
    applied_on_mm,
    balloon_series,
    build_error,
    iommu_warning,
    joerg_patch,
    make_settings,
    not_applied,
    removed_member,
    w1_warning,
)


def test_one_patch_with_findings_gets_one_reply_threaded_to_it(tmp_path: Path) -> None:
    series = balloon_series()
    drafts = render_replies(
        series, applied_on_mm(), [build_error()], make_settings(tmp_path), SERIES_URL
    )
    assert len(drafts) == 1
    d = drafts[0]
    assert d.kind == "patch" and d.patch == 2
    assert d.in_reply_to == series.patches[1].msgid
    assert d.references == (COVER, series.patches[1].msgid)
    assert d.subject == "Re: [PATCH v2 2/3] mm/balloon: use isolate_movable_page() to dequeue pages"
    assert d.to == ("Dana Kovač <dana.kovac@example.org>",)
    assert d.cc == (*LISTS, *CC)
    author_only = make_settings(tmp_path, cc_lists=False)
    assert recipients(series.patches[1], author_only)[1:] == (d.to, ())


def test_findings_in_several_patches_add_one_summary_to_the_cover(tmp_path: Path) -> None:
    series = balloon_series()
    findings = [build_error(2), w1_warning(2), removed_member(3)]
    drafts = render_replies(series, applied_on_mm(), findings, make_settings(tmp_path), SERIES_URL)
    assert [(d.kind, d.patch) for d in drafts] == [("summary", None), ("patch", 2), ("patch", 3)]
    summary = drafts[0]
    assert summary.in_reply_to == COVER and summary.references == (COVER,)
    assert summary.subject == "Re: [PATCH v2 0/3] mm/balloon: migrate balloon pages via movable_ops"
    assert "Patch 2/3: mm/balloon: use isolate_movable_page() to dequeue pages" in summary.body


def test_same_diagnostic_in_two_configs_is_reported_once(tmp_path: Path) -> None:
    arm = build_error().model_copy(update={"arch": "arm64"})
    drafts = render_replies(
        balloon_series(), applied_on_mm(), [build_error(), arm], make_settings(tmp_path), SERIES_URL
    )
    body = drafts[0].body
    assert body.count("error: implicit declaration of function 'isolate_movable_page'") == 1
    assert "Configs:  x86_64 defconfig MIGRATION=n; arm64 defconfig MIGRATION=n" in body


def test_nothing_new_sends_nothing_unless_success_summary(tmp_path: Path) -> None:
    series, applied = balloon_series(), applied_on_mm()
    assert render_replies(series, applied, [], make_settings(tmp_path), SERIES_URL) == []
    drafts = render_replies(
        series, applied, [], make_settings(tmp_path, success_summary=True), SERIES_URL
    )
    assert [d.kind for d in drafts] == ["success"]
    assert drafts[0].in_reply_to == COVER


def test_digest_is_stable_for_an_unchanged_recheck(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = render_replies(balloon_series(), applied_on_mm(), [build_error()], settings, SERIES_URL)
    moved = build_error().model_copy(update={"line": 101, "column": 9})
    rebased = applied_on_mm().model_copy(update={"base": LINUS})
    again = render_replies(balloon_series(), rebased, [moved], settings, SERIES_URL)
    assert first[0].digest == again[0].digest
    other = render_replies(balloon_series(), applied_on_mm(), [w1_warning()], settings, SERIES_URL)
    assert other[0].digest != first[0].digest


def test_prose_is_wrapped_and_diagnostics_are_verbatim(tmp_path: Path) -> None:
    drafts = render_replies(
        balloon_series(), applied_on_mm(), [build_error()], make_settings(tmp_path), SERIES_URL
    )
    body = drafts[0].body
    diag = (
        "mm/balloon_compaction.c:95:22: error: implicit declaration of function "
        "'isolate_movable_page' [-Wimplicit-function-declaration]"
    )
    assert f"\n{diag}\n" in body
    verbatim = {diag, *build_error().excerpt.splitlines(), *build_error().reproduce}
    for line in body.splitlines():
        if line not in verbatim and not line.startswith(("  mm ", "git fetch ")):
            assert len(line) <= WIDTH, line
    assert "<html" not in body.lower()
    assert "\nReported-by: lorebot <lorebot@lorebot.example.org>\n" in body
    assert body.endswith(f"-- \nlorebot status page: {SERIES_URL}\n{COMMANDS_LINE}\n")


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (
            "=?UTF-8?q?=5BPATCH=5D_iommu/amd=3A_R=C3=BCckgabewert_pr=C3=BCfen?=",
            "[PATCH] iommu/amd: Rückgabewert prüfen",
        ),
        (
            "[PATCH v3 1/7] iommu/amd: make the device table\n per-segment",
            "[PATCH v3 1/7] iommu/amd: make the device table per-segment",
        ),
        ("Re: [PATCH] x86/mm: fix", "Re: [PATCH] x86/mm: fix"),
    ],
)
def test_subject_is_decoded_unfolded_and_not_re_re(raw: str, want: str) -> None:
    assert clean_header(raw) == want
    expected = want if want.startswith("Re:") else f"Re: {want}"
    assert reply_subject(raw) == expected


def test_reply_to_wins_over_from_and_names_keep_commas(tmp_path: Path) -> None:
    p = (
        balloon_series()
        .patches[0]
        .model_copy(update={"reply_to": "Dana Kovač <dana@kernel.example.net>"})
    )
    name, to, _ = recipients(p, make_settings(tmp_path))
    assert name == "Dana Kovač" and to == ("Dana Kovač <dana@kernel.example.net>",)
    p = p.model_copy(update={"reply_to": "", "author": "Rödel, Jörg <joro@8bytes.example.org>"})
    name, to, _ = recipients(p, make_settings(tmp_path))
    assert name == "Rödel, Jörg" and to == ('"Rödel, Jörg" <joro@8bytes.example.org>',)
    assert greeting(name) == "Hi Jörg,"


def test_list_mangled_from_answers_the_original_author(tmp_path: Path) -> None:
    mbox = ("From: Jörg Rödel <joro@8bytes.example.org>\n\nThe device table ...\n").encode()
    p = PatchMail(
        index=1,
        msgid="20261127.1234-1-joro@8bytes.example.org",
        subject="[PATCH] iommu/amd: fix device table size",
        title="iommu/amd: fix device table size",
        author="Jörg Rödel via iommu <iommu@lists.linux.dev>",
        author_email="iommu@lists.linux.dev",
        to=("iommu@lists.linux.dev",),
        mbox=b"Subject: x\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n\n" + mbox,
    )
    name, to, cc = recipients(p, make_settings(tmp_path))
    assert name == "Jörg Rödel"
    assert to == ("Jörg Rödel <joro@8bytes.example.org>",)
    assert cc == ("iommu@lists.linux.dev",)
    # the list's Reply-To pointing back at the list is not the author
    p2 = p.model_copy(
        update={"reply_to": "iommu@lists.linux.dev", "author_email": "joro@8bytes.example.org"}
    )
    assert recipients(p2, make_settings(tmp_path))[1] == ("Jörg Rödel <joro@8bytes.example.org>",)


def test_series_that_does_not_apply_gets_one_reply_to_the_cover(tmp_path: Path) -> None:
    series = balloon_series()
    (d,) = render_replies(
        series, not_applied(), [build_error()], make_settings(tmp_path), SERIES_URL
    )
    assert d.kind == "not-applied" and d.in_reply_to == COVER
    assert "patch 2/3" in d.body and series.patches[1].msgid in d.body
    assert "It fails in mm/balloon_compaction.c, at this hunk:" in d.body
    assert "\nerror: patch failed: mm/balloon_compaction.c:228\n" in d.body
    assert "  linus/master at adc218676eef (the list's default branch): patch 2" in d.body


def test_single_patch_without_cover_is_answered_on_the_patch(tmp_path: Path) -> None:
    series = joerg_patch()
    (d,) = render_replies(
        series, applied_on_iommu(), [iommu_warning()], make_settings(tmp_path), SERIES_URL
    )
    assert d.in_reply_to == series.msgid and d.references == (series.msgid,)
    assert d.subject == (
        "Re: [PATCH] iommu/amd: do not warn about the ‘ivrs_ioapic’ override twice"
    )
    assert d.to == ("Jörg Rödel <joro@8bytes.example.org>",)
    assert "apply this patch on the tested base" in d.body


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        ("Rödel, Jörg <joro@8bytes.example.org>", [("Rödel, Jörg", "joro@8bytes.example.org")]),
        ('"Kovač, Dana" <dana@example.org>', [("Kovač, Dana", "dana@example.org")]),
        ("linux-mm@kvack.org", [("", "linux-mm@kvack.org")]),
        ("a@example.org, B <b@example.org>", [("", "a@example.org"), ("B", "b@example.org")]),
        (
            "=?utf-8?q?J=C3=B6rg_R=C3=B6del?= <joro@8bytes.example.org>",
            [("Jörg Rödel", "joro@8bytes.example.org")],
        ),
    ],
)
def test_split_addresses(entry: str, want: list[tuple[str, str]]) -> None:
    assert split_addresses(entry) == want
