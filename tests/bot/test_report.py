"""Rendering replies: threading, recipients, subjects, digests, text layout.

Values built by hand from real kernel content; test_mail.py mails them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.core.models import AppliedPatch, ApplyResult, BaseAttempt, PatchMail, Series
from bot.core.results import Finding
from bot.report.render import (
    clean_header,
    recipients,
    render_replies,
    reply_subject,
    split_addresses,
)
from bot.report.text import WIDTH, greeting
from config.settings import Settings, load_settings

SERIES_URL = "https://lorebot.example.org/series/42"
BASE = "4e5a2f1b9c0d7e6f8a1b2c3d4e5f60718293a4b5"
LINUS = "adc218676eef25575469234709c2d87185ca223a"
MM_LIST = "linux-mm@kvack.org"
MM_URL = "https://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm.git"
LINUS_URL = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git"
LISTS = ("Andrew Morton <akpm@linux-foundation.org>",)
CC = ("David Hildenbrand <david@example.com>", "linux-mm@kvack.org",
      "linux-kernel@vger.kernel.org", "linuxppc-dev@lists.ozlabs.org")
COVER = "20261127101500.38211-1-dana.kovac@example.org"


def make_settings(tmp_path: Path, **mail: Any) -> Settings:
    """Settings under tmp_path with the bot's real-looking identity."""
    bot = "lorebot <lorebot@lorebot.example.org>"
    values: dict[str, Any] = {"sender": bot, "reported_by": bot, **mail}
    return load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[{"name": "linux-mm", "url": "https://lore.kernel.org/linux-mm",
                "address": MM_LIST, "trees": ["mm"]}],
        trees=[{"name": "mm", "url": MM_URL, "branches": ["mm-unstable", "mm-stable"]},
               {"name": "linus", "url": LINUS_URL, "branches": ["master"]}],
        mail=values,
        web={"base_url": "https://lorebot.example.org"},
    )


def _patch(i: int, title: str) -> PatchMail:
    return PatchMail(
        index=i, msgid=f"20261127101500.38211-{i + 1}-dana.kovac@example.org",
        subject=f"[PATCH v2 {i}/3] {title}", title=title,
        author="Dana Kovač <dana.kovac@example.org>", author_email="dana.kovac@example.org",
        references=(COVER,), to=LISTS, cc=CC,
    )


def balloon_series() -> Series:
    """A v2 series of three mm patches with a cover letter."""
    return Series(
        msgid=COVER, subject="[PATCH v2 0/3] mm/balloon: migrate balloon pages via movable_ops",
        version=2, total=3, cover=COVER,
        cover_subject="[PATCH v2 0/3] mm/balloon: migrate balloon pages via movable_ops",
        author="Dana Kovač <dana.kovac@example.org>", author_email="dana.kovac@example.org",
        subject_tags=("mm-unstable",),
        patches=(
            _patch(1, "mm/migrate: declare movable page isolation only with CONFIG_MIGRATION"),
            _patch(2, "mm/balloon: use isolate_movable_page() to dequeue pages"),
            _patch(3, "mm/balloon: remove balloon_dev_info->migratepage"),
        ),
    )


def applied_on_mm() -> ApplyResult:
    """The series applied on mm-unstable after its base-commit was not found."""
    return ApplyResult(
        ok=True, tree="mm", branch="mm-unstable", base=BASE,
        patches=tuple(AppliedPatch(index=i, msgid=f"m{i}", subject="s", commit=f"c{i}" * 10)
                      for i in (1, 2, 3)),
        tried=(
            BaseAttempt(how="base-commit", tree="mm",
                        sha="0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
                        reason="base-commit 0f1e2d3c4b5a not found in any configured tree"),
            BaseAttempt(how="subject-tag", tree="mm", branch="mm-unstable", sha=BASE, ok=True),
        ),
    )


def build_error(patch: int = 2) -> Finding:
    """Implicit declaration that only x86_64 defconfig with MIGRATION=n shows."""
    return Finding(
        check="build", kind="error", severity="error", patch=patch,
        file="mm/balloon_compaction.c", line=95, column=22,
        message="implicit declaration of function 'isolate_movable_page'",
        option="-Wimplicit-function-declaration",
        excerpt=(
            "   92\t\tif (!trylock_page(page))\n"
            "   93\t\t\tcontinue;\n"
            "   94\n"
            ">  95\t\tif (!isolate_movable_page(page, ISOLATE_UNEVICTABLE)) {\n"
            "   96\t\t\tunlock_page(page);\n"
            "   97\t\t\tcontinue;\n"
            "   98\t\t}"
        ),
        arch="x86_64", config="defconfig MIGRATION=n", symbols={"MIGRATION": "n"},
        compiler="gcc (Debian 14.2.0-19) 14.2.0",
        config_fragment="# CONFIG_MIGRATION is not set\n",
        reproduce=(
            "make O=build ARCH=x86_64 defconfig",
            "scripts/config --file build/.config -d MIGRATION",
            "make O=build ARCH=x86_64 olddefconfig",
            "make O=build ARCH=x86_64 mm/balloon_compaction.o",
        ),
        detail=(
            "With CONFIG_MIGRATION=n, include/linux/migrate.h no longer declares "
            "isolate_movable_page() after patch 1/3 removed its stub, but "
            "mm/balloon_compaction.c is built whenever CONFIG_MEMORY_BALLOON=y "
            "(obj-$(CONFIG_MEMORY_BALLOON) in mm/Makefile). x86_64 defconfig "
            "itself builds fine."
        ),
    )


def w1_warning(patch: int = 2) -> Finding:
    """A new -Wunused-but-set-variable warning in a W=1 build."""
    return Finding(
        check="build", kind="warning", severity="warning", patch=patch,
        file="mm/balloon_compaction.c", line=239, column=34,
        message="variable 'b_dev_info' set but not used",
        option="-Wunused-but-set-variable",
        excerpt=(
            "  236\tstatic int balloon_page_migrate(struct page *newpage, struct page *page,\n"
            "  237\t\t\tenum migrate_mode mode)\n"
            "  238\t{\n"
            "> 239\t\tstruct balloon_dev_info *b_dev_info = balloon_page_device(page);\n"
            "  240\n"
            "  241\t\tVM_BUG_ON_PAGE(!PageLocked(page), page);\n"
            "  242\t\tVM_BUG_ON_PAGE(!PageLocked(newpage), newpage);"
        ),
        arch="x86_64", config="defconfig", compiler="gcc (Debian 14.2.0-19) 14.2.0",
        reproduce=(
            "make O=build ARCH=x86_64 defconfig",
            "make O=build ARCH=x86_64 W=1 mm/balloon_compaction.o",
        ),
    )


def removed_member(patch: int = 3) -> Finding:
    """A member removed by the series, still set in a file no tested config builds."""
    return Finding(
        check="semantic", kind="removed-member", severity="error", patch=patch,
        title="use of a removed struct member",
        file="arch/powerpc/platforms/pseries/cmm.c", line=551,
        message="'struct balloon_dev_info' has no member named 'migratepage'",
        excerpt=(
            "  548\tstatic void cmm_balloon_compaction_init(void)\n"
            "  549\t{\n"
            "  550\t\tballoon_devinfo_init(&b_dev_info);\n"
            "> 551\t\tb_dev_info.migratepage = cmm_migratepage;\n"
            "  552\t}"
        ),
        reproduce=("git grep -n -w migratepage -- arch/ drivers/ mm/ include/",),
        detail=(
            "This patch removes 'migratepage' from struct balloon_dev_info in "
            "include/linux/balloon_compaction.h, but arch/powerpc/platforms/pseries/cmm.c "
            "still sets it. None of the tested configurations builds that file: it "
            "is built by obj-$(CONFIG_CMM) in arch/powerpc/platforms/pseries/Makefile, "
            "and CONFIG_CMM depends on PPC_PSERIES."
        ),
    )


def not_applied() -> ApplyResult:
    """Patch 2/3 conflicts in mm/balloon_compaction.c on every base tried."""
    return ApplyResult(
        ok=False, tree="linus", branch="master", base=LINUS, failed_patch=2,
        failed_file="mm/balloon_compaction.c",
        failed_hunk=(
            "@@ -228,9 +228,9 @@ static int balloon_page_migrate(struct page *newpage, "
            "struct page *page,\n"
            " \tVM_BUG_ON_PAGE(!PageLocked(page), page);\n"
            " \tVM_BUG_ON_PAGE(!PageLocked(newpage), newpage);\n"
            " \n"
            "-\treturn balloon->migratepage(balloon, newpage, page, mode);\n"
            "+\treturn balloon_page_movable_ops.migrate_page(newpage, page, mode);\n"
            " }"
        ),
        message=(
            "Applying: mm/migrate: declare movable page isolation only with CONFIG_MIGRATION\n"
            "Applying: mm/balloon: use isolate_movable_page() to dequeue pages\n"
            "error: patch failed: mm/balloon_compaction.c:228\n"
            "error: mm/balloon_compaction.c: patch does not apply\n"
            "Patch failed at 0002 mm/balloon: use isolate_movable_page() to dequeue pages"
        ),
        tried=(
            BaseAttempt(how="subject-tag", tree="mm", branch="mm-unstable", sha=BASE,
                        reason="patch 2 does not apply: mm/balloon_compaction.c:228"),
            BaseAttempt(how="branch", tree="linus", branch="master", sha=LINUS,
                        reason="patch 2 does not apply: mm/balloon_compaction.c:228"),
        ),
        base_certain=True,  # the [PATCH mm-unstable] tag named the base, and it failed there
    )


def joerg_patch() -> Series:
    """A single patch, no cover: UTF-8 name, subject RFC 2047-encoded and folded."""
    msgid = "20261126153012.4711-1-joro@8bytes.example.org"
    subject = ("=?UTF-8?q?=5BPATCH=5D_iommu/amd=3A_do_not_warn_about_the_?=\n"
               " =?UTF-8?q?=E2=80=98ivrs=5Fioapic=E2=80=99_override_twice?=")
    patch = PatchMail(
        index=1, msgid=msgid, subject=subject,
        title="iommu/amd: do not warn about the ‘ivrs_ioapic’ override twice",
        author="=?UTF-8?q?J=C3=B6rg_R=C3=B6del?= <joro@8bytes.example.org>",
        author_email="joro@8bytes.example.org",
        to=("Suravee Suthikulpanit <suravee.suthikulpanit@amd.example.com>",),
        cc=("Will Deacon <will@example.org>", "iommu@lists.linux.dev",
            "linux-kernel@vger.kernel.org"),
    )
    return Series(msgid=msgid, subject=subject, total=1, author=patch.author,
                  author_email=patch.author_email, patches=(patch,))


def iommu_warning() -> Finding:
    return w1_warning(1).model_copy(update={
        "file": "drivers/iommu/amd/init.c", "line": 3634, "column": 13,
        "message": "variable 'seg_id' set but not used",
        "excerpt": ("  3631\tstatic int __init parse_ivrs_ioapic(char *str)\n"
                    "  3632\t{\n"
                    "  3633\t\tu32 seg = 0, bus, dev, fn;\n"
                    "> 3634\t\tint id, i, seg_id;\n"
                    "  3635\t\tu32 devid;"),
        "reproduce": ("make O=build ARCH=x86_64 defconfig",
                      "scripts/config --file build/.config -e AMD_IOMMU",
                      "make O=build ARCH=x86_64 olddefconfig",
                      "make O=build ARCH=x86_64 W=1 drivers/iommu/amd/init.o"),
        "config": "defconfig AMD_IOMMU=y", "symbols": {"AMD_IOMMU": "y"},
    })


def applied_on_iommu() -> ApplyResult:
    return ApplyResult(ok=True, tree="linus", branch="master", base=LINUS, tried=(
        BaseAttempt(how="branch", tree="linus", branch="master", sha=LINUS, ok=True),))


def test_one_patch_with_findings_gets_one_reply_threaded_to_it(tmp_path: Path) -> None:
    series = balloon_series()
    drafts = render_replies(series, applied_on_mm(), [build_error()],
                            make_settings(tmp_path), SERIES_URL)
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
    drafts = render_replies(series, applied_on_mm(), findings, make_settings(tmp_path),
                            SERIES_URL)
    assert [(d.kind, d.patch) for d in drafts] == [("summary", None), ("patch", 2), ("patch", 3)]
    summary = drafts[0]
    assert summary.in_reply_to == COVER and summary.references == (COVER,)
    assert summary.subject == "Re: [PATCH v2 0/3] mm/balloon: migrate balloon pages via movable_ops"
    assert "Patch 2/3: mm/balloon: use isolate_movable_page() to dequeue pages" in summary.body


def test_same_diagnostic_in_two_configs_is_reported_once(tmp_path: Path) -> None:
    arm = build_error().model_copy(update={"arch": "arm64"})
    drafts = render_replies(balloon_series(), applied_on_mm(), [build_error(), arm],
                            make_settings(tmp_path), SERIES_URL)
    body = drafts[0].body
    assert body.count("error: implicit declaration of function 'isolate_movable_page'") == 1
    assert "Configs:  x86_64 defconfig MIGRATION=n; arm64 defconfig MIGRATION=n" in body


def test_nothing_new_sends_nothing_unless_success_summary(tmp_path: Path) -> None:
    series, applied = balloon_series(), applied_on_mm()
    assert render_replies(series, applied, [], make_settings(tmp_path), SERIES_URL) == []
    drafts = render_replies(series, applied, [], make_settings(tmp_path, success_summary=True),
                            SERIES_URL)
    assert [d.kind for d in drafts] == ["success"]
    assert drafts[0].in_reply_to == COVER


def test_digest_is_stable_for_an_unchanged_recheck(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = render_replies(balloon_series(), applied_on_mm(), [build_error()], settings,
                           SERIES_URL)
    moved = build_error().model_copy(update={"line": 101, "column": 9})
    rebased = applied_on_mm().model_copy(update={"base": LINUS})
    again = render_replies(balloon_series(), rebased, [moved], settings, SERIES_URL)
    assert first[0].digest == again[0].digest
    other = render_replies(balloon_series(), applied_on_mm(), [w1_warning()], settings,
                           SERIES_URL)
    assert other[0].digest != first[0].digest


def test_prose_is_wrapped_and_diagnostics_are_verbatim(tmp_path: Path) -> None:
    drafts = render_replies(balloon_series(), applied_on_mm(), [build_error()],
                            make_settings(tmp_path), SERIES_URL)
    body = drafts[0].body
    diag = ("mm/balloon_compaction.c:95:22: error: implicit declaration of function "
            "'isolate_movable_page' [-Wimplicit-function-declaration]")
    assert f"\n{diag}\n" in body
    verbatim = {diag, *build_error().excerpt.splitlines(), *build_error().reproduce}
    for line in body.splitlines():
        if line not in verbatim and not line.startswith(("  mm ", "git fetch ")):
            assert len(line) <= WIDTH, line
    assert "<html" not in body.lower()
    assert "\nReported-by: lorebot <lorebot@lorebot.example.org>\n" in body
    assert body.endswith(f"-- \nlorebot status page: {SERIES_URL}\n")


@pytest.mark.parametrize(("raw", "want"), [
    ("=?UTF-8?q?=5BPATCH=5D_iommu/amd=3A_R=C3=BCckgabewert_pr=C3=BCfen?=",
     "[PATCH] iommu/amd: Rückgabewert prüfen"),
    ("[PATCH v3 1/7] iommu/amd: make the device table\n per-segment",
     "[PATCH v3 1/7] iommu/amd: make the device table per-segment"),
    ("Re: [PATCH] x86/mm: fix", "Re: [PATCH] x86/mm: fix"),
])
def test_subject_is_decoded_unfolded_and_not_re_re(raw: str, want: str) -> None:
    assert clean_header(raw) == want
    expected = want if want.startswith("Re:") else f"Re: {want}"
    assert reply_subject(raw) == expected


def test_reply_to_wins_over_from_and_names_keep_commas(tmp_path: Path) -> None:
    p = balloon_series().patches[0].model_copy(update={
        "reply_to": "Dana Kovač <dana@kernel.example.net>"})
    name, to, _ = recipients(p, make_settings(tmp_path))
    assert name == "Dana Kovač" and to == ("Dana Kovač <dana@kernel.example.net>",)
    p = p.model_copy(update={"reply_to": "", "author": "Rödel, Jörg <joro@8bytes.example.org>"})
    name, to, _ = recipients(p, make_settings(tmp_path))
    assert name == "Rödel, Jörg" and to == ('"Rödel, Jörg" <joro@8bytes.example.org>',)
    assert greeting(name) == "Hi Jörg,"


def test_list_mangled_from_answers_the_original_author(tmp_path: Path) -> None:
    mbox = ("From: Jörg Rödel <joro@8bytes.example.org>\n\nThe device table ...\n").encode()
    p = PatchMail(
        index=1, msgid="20261127.1234-1-joro@8bytes.example.org",
        subject="[PATCH] iommu/amd: fix device table size",
        title="iommu/amd: fix device table size",
        author="Jörg Rödel via iommu <iommu@lists.linux.dev>",
        author_email="iommu@lists.linux.dev", to=("iommu@lists.linux.dev",),
        mbox=b"Subject: x\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n\n" + mbox,
    )
    name, to, cc = recipients(p, make_settings(tmp_path))
    assert name == "Jörg Rödel"
    assert to == ("Jörg Rödel <joro@8bytes.example.org>",)
    assert cc == ("iommu@lists.linux.dev",)
    # the list's Reply-To pointing back at the list is not the author
    p2 = p.model_copy(update={"reply_to": "iommu@lists.linux.dev",
                              "author_email": "joro@8bytes.example.org"})
    assert recipients(p2, make_settings(tmp_path))[1] == ("Jörg Rödel <joro@8bytes.example.org>",)


def test_series_that_does_not_apply_gets_one_reply_to_the_cover(tmp_path: Path) -> None:
    series = balloon_series()
    (d,) = render_replies(series, not_applied(), [build_error()], make_settings(tmp_path),
                          SERIES_URL)
    assert d.kind == "not-applied" and d.in_reply_to == COVER
    assert "patch 2/3" in d.body and series.patches[1].msgid in d.body
    assert "It fails in mm/balloon_compaction.c, at this hunk:" in d.body
    assert "\nerror: patch failed: mm/balloon_compaction.c:228\n" in d.body
    assert "  linus/master at adc218676eef (the list's default branch): patch 2" in d.body


def test_single_patch_without_cover_is_answered_on_the_patch(tmp_path: Path) -> None:
    series = joerg_patch()
    (d,) = render_replies(series, applied_on_iommu(), [iommu_warning()],
                          make_settings(tmp_path), SERIES_URL)
    assert d.in_reply_to == series.msgid and d.references == (series.msgid,)
    assert d.subject == ("Re: [PATCH] iommu/amd: do not warn about the ‘ivrs_ioapic’ "
                         "override twice")
    assert d.to == ("Jörg Rödel <joro@8bytes.example.org>",)
    assert "apply this patch on the tested base" in d.body


@pytest.mark.parametrize(("entry", "want"), [
    ("Rödel, Jörg <joro@8bytes.example.org>", [("Rödel, Jörg", "joro@8bytes.example.org")]),
    ('"Kovač, Dana" <dana@example.org>', [("Kovač, Dana", "dana@example.org")]),
    ("linux-mm@kvack.org", [("", "linux-mm@kvack.org")]),
    ("a@example.org, B <b@example.org>", [("", "a@example.org"), ("B", "b@example.org")]),
    ("=?utf-8?q?J=C3=B6rg_R=C3=B6del?= <joro@8bytes.example.org>",
     [("Jörg Rödel", "joro@8bytes.example.org")]),
])
def test_split_addresses(entry: str, want: list[tuple[str, str]]) -> None:
    assert split_addresses(entry) == want

