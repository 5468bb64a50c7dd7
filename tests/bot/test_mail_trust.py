"""What reaches an author's mail: only findings of mailed checks, never a fault of ours,
"does not apply" only on a base the author named, one summary instead of a flood."""

from __future__ import annotations

from pathlib import Path

from bot.core.models import ApplyResult, PatchMail, Series
from bot.core.results import Finding
from bot.report.render import render_replies
from bot.run.pipeline import CheckOutcome
from bot.run.worker import draft_replies
from config.settings import MailPolicySettings
from tests.support.golden import GOLDEN, assert_clean
from tests.support.replies import (
    SERIES_URL,
    applied_on_mm,
    balloon_series,
    build_error,
    make_settings,
    not_applied,
)


def checkpatch(patch: int, severity: str = "check") -> Finding:
    return Finding(
        check="checkpatch",
        kind="PARENTHESIS_ALIGNMENT",
        severity=severity,
        patch=patch,
        file="mm/balloon_compaction.c",
        line=10 + patch,
        message="Alignment should match open parenthesis",
    )


def test_checkpatch_is_page_only_by_default(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    style = [checkpatch(1), checkpatch(2, "warning"), checkpatch(3, "error")]
    assert render_replies(balloon_series(), applied_on_mm(), style, settings, SERIES_URL) == []
    drafts = render_replies(
        balloon_series(), applied_on_mm(), [*style, build_error(2)], settings, SERIES_URL
    )
    assert [d.patch for d in drafts] == [2]
    assert "checkpatch" not in drafts[0].body and "Alignment" not in drafts[0].body
    # a list may ask for checkpatch's ERRORs, never its CHECKs
    errors_too = MailPolicySettings(checkpatch_errors=True)
    drafts = render_replies(
        balloon_series(), applied_on_mm(), style, settings, SERIES_URL, policy=errors_too
    )
    assert [d.patch for d in drafts] == [3]


def test_not_applied_is_mailed_only_on_a_certain_base(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    certain = not_applied()
    assert [
        d.kind for d in render_replies(balloon_series(), certain, [], settings, SERIES_URL)
    ] == ["not-applied"]
    guessed = certain.model_copy(update={"base_certain": False})
    assert render_replies(balloon_series(), guessed, [], settings, SERIES_URL) == []


def _long_series(n: int) -> Series:
    patches = tuple(
        PatchMail(
            index=i,
            msgid=f"p{i}@example.org",
            subject=f"[PATCH {i}/{n}] mm: step {i}",
            title=f"mm: step {i}",
            author="Dev Eloper <dev@example.org>",
            author_email="dev@example.org",
        )
        for i in range(1, n + 1)
    )
    return Series(
        msgid="p1@example.org",
        subject=patches[0].subject,
        total=n,
        patches=patches,
        author="Dev Eloper <dev@example.org>",
        author_email="dev@example.org",
    )


def test_past_five_patch_mails_one_bounded_summary(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    series = _long_series(20)
    findings = [
        build_error(i).model_copy(update={"line": 100 + j, "message": f"bad {w}"})
        for i in range(1, 13)
        for j, w in enumerate("abcde")
    ]
    (d,) = render_replies(series, applied_on_mm(), findings, settings, SERIES_URL)
    assert d.kind == "summary"
    assert "one line each; the details are on the status page" in " ".join(d.body.split())
    items = [ln for ln in d.body.splitlines() if ln.startswith(("Patch ", "  Build", "  ..."))]
    assert len(items) <= 40 and "more lines on the status page" in d.body
    # five patches with findings still get their own mails, plus a summary
    five = [f for f in findings if (f.patch or 0) <= 5]
    drafts = render_replies(series, applied_on_mm(), five, settings, SERIES_URL)
    assert [d.kind for d in drafts] == ["summary", *["patch"] * 5]


def test_a_run_with_a_fault_of_ours_drafts_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    outcome = CheckOutcome(
        series=balloon_series(),
        applied=applied_on_mm(),
        findings=[build_error(2)],
        faults=["build: aarch64-linux-gnu-gcc not found"],
    )
    assert draft_replies(settings, outcome) == []
    unsynced = ApplyResult(
        ok=False, fault="no base to apply on: mm/mm-unstable not synced", base_certain=False
    )
    assert draft_replies(settings, CheckOutcome(series=balloon_series(), applied=unsynced)) == []


def test_golden_mails_carry_nothing_but_findings() -> None:
    """No run notes, no Python repr, no path of this machine, 72 columns (diagnostics,
    excerpts, commands and headers may be longer)."""
    emls = sorted(GOLDEN.glob("*.eml"))
    assert emls
    for eml in emls:
        assert_clean(eml.name, eml.read_text())


def test_closes_links_the_report_itself(tmp_path: Path) -> None:
    """Beside Reported-by:, Closes: the report's own lore URL (its Message-ID is fixed when
    it is rendered, and a re-render of the same report is the same mail)."""
    settings = make_settings(tmp_path)
    args = (balloon_series(), applied_on_mm(), [build_error(2)], settings, SERIES_URL)
    (d,) = render_replies(*args, archive="https://lore.kernel.org/linux-mm")
    assert f"Reported-by: {settings.mail.reported_by}\n" in d.body
    assert f"\nCloses: https://lore.kernel.org/linux-mm/{d.msgid}/\n" in d.body
    (again,) = render_replies(*args, archive="https://lore.kernel.org/linux-mm")
    assert again.msgid == d.msgid


def test_one_item_per_cause(tmp_path: Path) -> None:
    """A removed member used on three lines, also broken in the build: one item."""
    settings = make_settings(tmp_path)
    message = "'struct balloon_dev_info' has no member named 'migratepage'"
    semantic = [
        Finding(
            check="semantic",
            kind="removed-member",
            severity="error",
            patch=2,
            file="mm/balloon_compaction.c",
            line=n,
            message=message,
            title="use of a removed struct member",
        )
        for n in (230, 95, 240)
    ]
    build = build_error(2).model_copy(update={"line": 95, "column": 22, "message": message})
    (d,) = render_replies(
        balloon_series(), applied_on_mm(), [*semantic, build], settings, SERIES_URL
    )
    text = " ".join(d.body.split())
    assert "found a new build error in mm/balloon_compaction.c:95" in text
    assert "[1/" not in d.body  # one item, not four
    assert "The same in mm/balloon_compaction.c at lines 230, 240." in text
    assert "Found by the build and the semantic checks." in text


def test_a_local_tree_is_named_by_commit_never_by_path(tmp_path: Path) -> None:
    local = tmp_path / "srv" / "mm.git"
    settings = make_settings(tmp_path)
    settings = settings.model_copy(
        update={
            "trees": [
                t.model_copy(update={"url": str(local)}) if t.name == "mm" else t
                for t in settings.trees
            ]
        }
    )
    (d,) = render_replies(balloon_series(), applied_on_mm(), [build_error(2)], settings, SERIES_URL)
    assert str(tmp_path) not in d.body and "git fetch" not in d.body
    assert "the tested tree is not public; its base is commit 4e5a2f1b9c0d of mm" in " ".join(
        d.body.split()
    )
    public = settings.model_copy(
        update={
            "trees": [
                t.model_copy(update={"public_url": "https://git.example.org/mm.git"})
                for t in settings.trees
            ]
        }
    )
    (d,) = render_replies(balloon_series(), applied_on_mm(), [build_error(2)], public, SERIES_URL)
    assert "git fetch https://git.example.org/mm.git mm-unstable" in d.body


def test_each_mail_says_what_was_not_compiled(tmp_path: Path) -> None:
    from bot.core.results import Uncompiled

    settings = make_settings(tmp_path)
    missed = [Uncompiled(what="mm/migrate_device.o", needs="CONFIG_DEVICE_MIGRATION")]
    drafts = render_replies(
        balloon_series(), applied_on_mm(), [build_error(2)], settings, SERIES_URL, uncompiled=missed
    )
    text = " ".join(drafts[0].body.split())
    assert (
        "Not compiled in any tested config: mm/migrate_device.o (CONFIG_DEVICE_MIGRATION)."
    ) in text
    (d,) = render_replies(balloon_series(), applied_on_mm(), [build_error(2)], settings, SERIES_URL)
    assert "Not compiled" not in d.body


def test_a_documentation_finding_names_no_config_and_a_foreign_base_no_empty_tree(
    tmp_path: Path,
) -> None:
    """A kernel-doc warning is not "found by reading the source" instead of a build: it has
    no config to name. A base-commit found in no tree is named by its commit."""
    from bot.core.models import BaseAttempt

    settings = make_settings(tmp_path)
    doc = Finding(
        check="kernel-doc",
        kind="kernel-doc",
        severity="warning",
        patch=2,
        file="include/linux/bitops.h",
        line=253,
        message="Excess function parameter 'value' description in 'get_parity8'",
        title="kernel-doc warning",
    )
    applied = applied_on_mm()
    foreign = BaseAttempt(
        how="base-commit", tree="", sha="3996187f80a0" + "0" * 28, reason="in no configured tree"
    )
    applied = applied.model_copy(update={"tried": (foreign, *applied.tried)})
    # the parameter renamed in the comment only: two warnings, one cause, one item
    undescribed = doc.model_copy(
        update={
            "message": "Function parameter or struct member 'val' not described in 'get_parity8'"
        }
    )
    (d,) = render_replies(balloon_series(), applied, [doc, undescribed], settings, SERIES_URL)
    assert "Config:" not in d.body and "[1/" not in d.body
    assert "found a new kernel-doc warning in include/linux/bitops.h:253" in " ".join(
        d.body.split()
    )
    assert f"include/linux/bitops.h:253: warning: {undescribed.message}" in d.body
    assert f"include/linux/bitops.h:253: warning: {doc.message}" in d.body
    assert "\n  3996187f80a0 (from the base-commit: trailer): in no configured tree" in d.body


def test_comments_kernel_doc_cannot_understand_are_one_item(tmp_path: Path) -> None:
    """Doxygen-style comments all over a new driver: one item listing the lines (the
    replay of linux-hwmon mailed fifteen)."""
    settings = make_settings(tmp_path)
    doc = [
        Finding(
            check="kernel-doc",
            kind="kernel-doc",
            severity="warning",
            patch=2,
            file="drivers/hwmon/max42500.c",
            line=line,
            message=f"Cannot understand  * @brief {what}",
            title="kernel-doc warning",
        )
        for line, what in ((206, "Read a raw value."), (251, "Write a raw value."), (278, "Mask."))
    ]
    (d,) = render_replies(balloon_series(), applied_on_mm(), doc, settings, SERIES_URL)
    text = " ".join(d.body.split())
    assert "[1/" not in d.body
    assert "found a new kernel-doc warning in drivers/hwmon/max42500.c:206" in text
    assert "The same in drivers/hwmon/max42500.c at lines 251, 278." in text


def test_each_mail_states_the_measured_patch_coverage(tmp_path: Path) -> None:
    from bot.core.results import Coverage, Uncompiled, UncoveredLines

    settings = make_settings(tmp_path)
    measured = Coverage(
        lines=40,
        covered=37,
        uncovered=(
            UncoveredLines(
                file="mm/migrate_device.c", lines=(10, 11, 12), reason="symbol unsatisfiable"
            ),
        ),
    )
    missed = [Uncompiled(what="mm/migrate_device.o", needs="CONFIG_DEVICE_MIGRATION")]
    (d,) = render_replies(
        balloon_series(),
        applied_on_mm(),
        [build_error(2)],
        settings,
        SERIES_URL,
        uncompiled=missed,
        coverage=measured,
    )
    text = " ".join(d.body.split())
    assert (
        "Build coverage: 37 of 40 changed lines of .c/.h files (92.5%) were compiled in at "
        "least one tested config; not compiled: mm/migrate_device.c:10-12 (symbol unsatisfiable)."
    ) in text
    assert "Not compiled in any" not in text  # one statement, the measured one
    full = Coverage(lines=5, covered=5)
    (d,) = render_replies(
        balloon_series(), applied_on_mm(), [build_error(2)], settings, SERIES_URL, coverage=full
    )
    assert "Build coverage: 5 of 5 changed lines of .c/.h files (100.0%)" in " ".join(
        d.body.split()
    )
