"""The semantic check on the real linux-source-6.12 tree: each rule and its near miss."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.results import Finding
from checks.semantic import SemanticCheck
from config.settings import load_settings
from tests.support import kernel
from tests.support import semantic_series as s
from tests.support.semantic_series import match

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def findings(
    kernel_git_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Finding]]:
    tmp = tmp_path_factory.mktemp("semantic")
    settings = load_settings(
        None, paths={"state": str(tmp / "state"), "cache": str(tmp / "cache")}, lists=[], trees=[]
    )
    wt = kernel.kernel_slot("semantic")
    ctx = kernel.series_context(wt, s.patches(), settings, tmp)
    yield list(SemanticCheck().run(ctx).findings)
    kernel.git(wt, "reset", "-q", "--hard", kernel.REF)


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def test_every_expected_finding_and_nothing_else(findings: list[Finding]) -> None:
    missed, extra = match(findings, s.EXPECTED)
    assert missed == []
    assert [(f.kind, f.file, f.line, f.message) for f in extra] == []


def test_removed_member_is_type_aware(findings: list[Finding]) -> None:
    members = of_kind(findings, "removed-member")
    # `->pages` is everywhere; only struct balloon_dev_info's count
    assert {f.file for f in members} == {s.H, s.C, s.CMM, s.VMW, s.VIRTIO, "mm/migrate.c"}
    assert not any("vboxguest" in f.file for f in findings)
    vmw = next(f for f in members if f.file == s.VMW)
    # through a member of another struct: `struct balloon_dev_info b_dev_info;` in vmballoon
    assert vmw.source_line == "b->b_dev_info.isolated_pages--;"
    assert vmw.patch == 1 and vmw.severity == "error" and vmw.check == "semantic"
    assert "vmballoon_migratepage()" in vmw.message and "isolated_pages" in vmw.message
    assert "obj-$(CONFIG_VMWARE_BALLOON)" in vmw.detail
    assert "CONFIG_BALLOON_COMPACTION" in vmw.detail
    assert "> " in vmw.excerpt and "isolated_pages--" in vmw.excerpt


def test_ops_initializer_only_for_the_struct_that_lost_the_callback(
    findings: list[Finding],
) -> None:
    ops = of_kind(findings, "ops-initializer")
    assert sorted(f.file for f in ops) == [s.C, "mm/z3fold.c", "mm/zsmalloc.c"]
    assert all(f.patch == 3 for f in ops)
    # the near miss: `struct balloon_ops` also has .putback_page, still there
    balloon = next(f for f in ops if f.file == s.C)
    assert ".isolate_page" in balloon.excerpt and "balloon_ops" not in balloon.excerpt
    zs = next(f for f in ops if f.file == "mm/zsmalloc.c")
    assert "obj-$(CONFIG_ZSMALLOC)" in zs.detail and "CONFIG_COMPACTION" in zs.detail


def test_prototype_change_reports_stale_callers_only(findings: list[Finding]) -> None:
    protos = of_kind(findings, "prototype-change")
    assert sorted(f.file for f in protos) == [s.CMM, s.VIRTIO]
    assert all("balloon_page_enqueue" in f.message and f.patch == 4 for f in protos)
    assert not any("balloon_page_list_enqueue" in f.message for f in findings)


def test_stub_mismatch_one_side_changed(findings: list[Finding]) -> None:
    stubs = of_kind(findings, "stub-mismatch")
    assert len(stubs) == 1
    assert "balloon_page_insert" in stubs[0].message and stubs[0].patch == 5
    assert "CONFIG_BALLOON_COMPACTION" in stubs[0].message
    assert not any("balloon_mapping_gfp_mask" in f.message for f in findings)


def test_removed_symbol_not_for_comments(findings: list[Finding]) -> None:
    symbols = of_kind(findings, "removed-symbol")
    assert sorted(f.file for f in symbols) == [s.CMM, s.VMW, s.VIRTIO]
    assert all("balloon_page_alloc" in f.message and f.patch == 6 for f in symbols)
    # balloon_page_push is still named in a comment of mm/balloon_compaction.c
    assert not any("balloon_page_push" in f.message for f in findings)
