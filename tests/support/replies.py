"""Reply inputs built by hand from real kernel content: a v2 mm series with a cover,
where it applied, and the findings a build and the semantic check report on it.

test_report renders them; test_mail and test_delivery mail them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.models import AppliedPatch, ApplyResult, BaseAttempt, PatchMail, Series
from bot.core.results import Finding
from config.settings import Settings, load_settings

SERIES_URL = "https://lorebot.example.org/series/42"
BASE = "4e5a2f1b9c0d7e6f8a1b2c3d4e5f60718293a4b5"
LINUS = "adc218676eef25575469234709c2d87185ca223a"
MM_LIST = "linux-mm@kvack.org"
MM_URL = "https://git.kernel.org/pub/scm/linux/kernel/git/akpm/mm.git"
LINUS_URL = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git"
LISTS = ("Andrew Morton <akpm@linux-foundation.org>",)
CC = (
    "David Hildenbrand <david@example.com>",
    "linux-mm@kvack.org",
    "linux-kernel@vger.kernel.org",
    "linuxppc-dev@lists.ozlabs.org",
)
COVER = "20261127101500.38211-1-dana.kovac@example.org"


def make_settings(tmp_path: Path, **mail: Any) -> Settings:
    """Settings under tmp_path with the bot's real-looking identity."""
    bot = "lorebot <lorebot@lorebot.example.org>"
    values: dict[str, Any] = {"sender": bot, "reported_by": bot, **mail}
    return load_settings(
        None,
        paths={"state": str(tmp_path / "state"), "cache": str(tmp_path / "cache")},
        lists=[
            {
                "name": "linux-mm",
                "url": "https://lore.kernel.org/linux-mm",
                "address": MM_LIST,
                "trees": ["mm"],
            }
        ],
        trees=[
            {"name": "mm", "url": MM_URL, "branches": ["mm-unstable", "mm-stable"]},
            {"name": "linus", "url": LINUS_URL, "branches": ["master"]},
        ],
        mail=values,
        web={"base_url": "https://lorebot.example.org"},
    )


def _patch(i: int, title: str) -> PatchMail:
    return PatchMail(
        index=i,
        msgid=f"20261127101500.38211-{i + 1}-dana.kovac@example.org",
        subject=f"[PATCH v2 {i}/3] {title}",
        title=title,
        author="Dana Kovač <dana.kovac@example.org>",
        author_email="dana.kovac@example.org",
        references=(COVER,),
        to=LISTS,
        cc=CC,
    )


def balloon_series() -> Series:
    """A v2 series of three mm patches with a cover letter."""
    return Series(
        msgid=COVER,
        subject="[PATCH v2 0/3] mm/balloon: migrate balloon pages via movable_ops",
        version=2,
        total=3,
        cover=COVER,
        cover_subject="[PATCH v2 0/3] mm/balloon: migrate balloon pages via movable_ops",
        author="Dana Kovač <dana.kovac@example.org>",
        author_email="dana.kovac@example.org",
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
        ok=True,
        tree="mm",
        branch="mm-unstable",
        base=BASE,
        patches=tuple(
            AppliedPatch(index=i, msgid=f"m{i}", subject="s", commit=f"c{i}" * 10)
            for i in (1, 2, 3)
        ),
        tried=(
            BaseAttempt(
                how="base-commit",
                tree="mm",
                sha="0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
                reason="base-commit 0f1e2d3c4b5a not found in any configured tree",
            ),
            BaseAttempt(how="subject-tag", tree="mm", branch="mm-unstable", sha=BASE, ok=True),
        ),
    )


def build_error(patch: int = 2) -> Finding:
    """Implicit declaration that only x86_64 defconfig with MIGRATION=n shows."""
    return Finding(
        check="build",
        kind="error",
        severity="error",
        patch=patch,
        file="mm/balloon_compaction.c",
        line=95,
        column=22,
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
        arch="x86_64",
        config="defconfig MIGRATION=n",
        symbols={"MIGRATION": "n"},
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
        check="build",
        kind="warning",
        severity="warning",
        patch=patch,
        file="mm/balloon_compaction.c",
        line=239,
        column=34,
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
        arch="x86_64",
        config="defconfig",
        compiler="gcc (Debian 14.2.0-19) 14.2.0",
        reproduce=(
            "make O=build ARCH=x86_64 defconfig",
            "make O=build ARCH=x86_64 W=1 mm/balloon_compaction.o",
        ),
    )


def removed_member(patch: int = 3) -> Finding:
    """A member removed by the series, still set in a file no tested config builds."""
    return Finding(
        check="semantic",
        kind="removed-member",
        severity="error",
        patch=patch,
        title="use of a removed struct member",
        file="arch/powerpc/platforms/pseries/cmm.c",
        line=551,
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
        ok=False,
        tree="linus",
        branch="master",
        base=LINUS,
        failed_patch=2,
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
            BaseAttempt(
                how="subject-tag",
                tree="mm",
                branch="mm-unstable",
                sha=BASE,
                reason="patch 2 does not apply: mm/balloon_compaction.c:228",
            ),
            BaseAttempt(
                how="branch",
                tree="linus",
                branch="master",
                sha=LINUS,
                reason="patch 2 does not apply: mm/balloon_compaction.c:228",
            ),
        ),
        base_certain=True,  # the [PATCH mm-unstable] tag named the base, and it failed there
    )


def joerg_patch() -> Series:
    """A single patch, no cover: UTF-8 name, subject RFC 2047-encoded and folded."""
    msgid = "20261126153012.4711-1-joro@8bytes.example.org"
    subject = (
        "=?UTF-8?q?=5BPATCH=5D_iommu/amd=3A_do_not_warn_about_the_?=\n"
        " =?UTF-8?q?=E2=80=98ivrs=5Fioapic=E2=80=99_override_twice?="
    )
    patch = PatchMail(
        index=1,
        msgid=msgid,
        subject=subject,
        title="iommu/amd: do not warn about the ‘ivrs_ioapic’ override twice",
        author="=?UTF-8?q?J=C3=B6rg_R=C3=B6del?= <joro@8bytes.example.org>",
        author_email="joro@8bytes.example.org",
        to=("Suravee Suthikulpanit <suravee.suthikulpanit@amd.example.com>",),
        cc=(
            "Will Deacon <will@example.org>",
            "iommu@lists.linux.dev",
            "linux-kernel@vger.kernel.org",
        ),
    )
    return Series(
        msgid=msgid,
        subject=subject,
        total=1,
        author=patch.author,
        author_email=patch.author_email,
        patches=(patch,),
    )


def iommu_warning() -> Finding:
    return w1_warning(1).model_copy(
        update={
            "file": "drivers/iommu/amd/init.c",
            "line": 3634,
            "column": 13,
            "message": "variable 'seg_id' set but not used",
            "excerpt": (
                "  3631\tstatic int __init parse_ivrs_ioapic(char *str)\n"
                "  3632\t{\n"
                "  3633\t\tu32 seg = 0, bus, dev, fn;\n"
                "> 3634\t\tint id, i, seg_id;\n"
                "  3635\t\tu32 devid;"
            ),
            "reproduce": (
                "make O=build ARCH=x86_64 defconfig",
                "scripts/config --file build/.config -e AMD_IOMMU",
                "make O=build ARCH=x86_64 olddefconfig",
                "make O=build ARCH=x86_64 W=1 drivers/iommu/amd/init.o",
            ),
            "config": "defconfig AMD_IOMMU=y",
            "symbols": {"AMD_IOMMU": "y"},
        }
    )


def applied_on_iommu() -> ApplyResult:
    return ApplyResult(
        ok=True,
        tree="linus",
        branch="master",
        base=LINUS,
        tried=(BaseAttempt(how="branch", tree="linus", branch="master", sha=LINUS, ok=True),),
    )
