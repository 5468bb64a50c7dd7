"""checkpatch on mailed patches: issues on added lines only, mapped back to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.checkpatch import CheckpatchCheck, Issue, map_patch, new_issues, parse_issues
from config.settings import Settings
from tests.support import kernel
from tests.support.kernel import WrittenPatch, replace_in

PATCH = """From 1 Mon Sep 17 00:00:00 2001
Subject: [PATCH] mm: x

Body.
---
 mm/a.c | 2 +-
 mm/b.c | 1 -
 2 files changed

diff --git a/mm/a.c b/mm/a.c
index 1..2 100644
--- a/mm/a.c
+++ b/mm/a.c
@@ -10,3 +10,3 @@ int f(void)
 \tint a;
-\tint b;
+\tint  b;
 \treturn a;
diff --git a/mm/b.c b/mm/b.c
index 1..2 100644
--- a/mm/b.c
+++ b/mm/b.c
@@ -5,2 +5,1 @@
 x;
-y;
-- \n2.39.5
"""


def test_map_patch_lines() -> None:
    lines = map_patch(PATCH)
    added = [(pl.file, pl.new_line, pl.text) for pl in lines if pl.added]
    assert added == [("mm/a.c", 11, "+\tint  b;")]
    ctx = lines[PATCH.splitlines().index(" \tint a;")]
    assert ctx.in_hunk and not ctx.added and ctx.new_line == 10


def test_only_new_issues_are_kept() -> None:
    lines = map_patch(PATCH)
    row = {text: n for n, text in enumerate(PATCH.splitlines(), start=1)}
    issues = [
        Issue(row["Body."], "warning", "COMMIT_MESSAGE", "short"),  # the patch itself
        Issue(row["+\tint  b;"], "error", "SPACING", "new"),  # added line: kept
        Issue(row[" \treturn a;"], "check", "AVOID_BUG", "old"),  # context: dropped
        Issue(row["-y;"], "warning", "SPACING", "removed"),  # removed: dropped
        Issue(row["+++ b/mm/b.c"], "warning", "X", "only removes lines"),  # dropped
        Issue(row["+++ b/mm/a.c"], "warning", "Y", "adds lines"),  # kept, no line
        Issue(row["2.39.5"], "error", "MISSING_SIGN_OFF", "sign"),  # the patch itself
    ]
    kept = [
        (i.type, pl.file if pl else None, pl.new_line if pl else None)
        for i, pl in new_issues(issues, lines)
    ]
    assert kept == [
        ("COMMIT_MESSAGE", None, None),
        ("SPACING", "mm/a.c", 11),
        ("Y", "mm/a.c", None),
        ("MISSING_SIGN_OFF", None, None),
    ]


def test_parse_terse_output() -> None:
    out = (
        "/tmp/x/0001.patch:18: ERROR:TRAILING_WHITESPACE: trailing whitespace\n"
        "/tmp/x/0001.patch:7: WARNING:COMMIT_MESSAGE: Missing commit description\n"
        "Traceback (most recent call last):\n"
        "/tmp/x/0001.patch:19: CHECK:SPACING: spaces preferred around that '|' (ctx:VxV)\n"
    )
    assert parse_issues(out) == [
        Issue(18, "error", "TRAILING_WHITESPACE", "trailing whitespace"),
        Issue(7, "warning", "COMMIT_MESSAGE", "Missing commit description"),
        Issue(19, "check", "SPACING", "spaces preferred around that '|' (ctx:VxV)"),
    ]


@pytest.mark.kernel
def test_checkpatch_on_real_patch(kernel_git_dir: Path, settings: Settings, tmp_path: Path) -> None:
    wt = kernel.kernel_slot("semantic")
    c = "mm/balloon_compaction.c"
    ctx = kernel.series_context(
        wt,
        [
            # next to an existing BUG() (checkpatch --strict: AVOID_BUG) that must not be reported
            WrittenPatch(
                "mm/balloon: style",
                [
                    replace_in(
                        c,
                        "\t\t\t     !b_dev_info->isolated_pages))\n\t\t\tBUG();\n",
                        "\t\t\t     !b_dev_info->isolated_pages ))\n\t\t\tBUG();\n",
                    )
                ],
            ),
            WrittenPatch(
                "mm/balloon: clean",
                [replace_in(c, "\tunsigned long flags;\n", "\tunsigned long flags = 0;\n")],
            ),
        ],
        settings,
        tmp_path,
    )
    try:
        findings = list(CheckpatchCheck().run(ctx).findings)
    finally:
        kernel.git(wt, "reset", "-q", "--hard", kernel.REF)
    code = [f for f in findings if f.file]
    assert [(f.patch, f.kind, f.severity, f.file) for f in code] == [(1, "SPACING", "error", c)]
    assert code[0].line == 190 and code[0].source_line.endswith("isolated_pages ))")
    # the one excerpt format (0-day's), from the file as the patch left it
    assert "> 190\t" in code[0].excerpt and "isolated_pages ))" in code[0].excerpt
    assert not any(f.kind == "AVOID_BUG" for f in findings)
    # commit-message issues are the patch's own (test commits have no description)
    assert all(f.line is None for f in findings if not f.file)
