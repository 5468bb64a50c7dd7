"""Which paths printed by a tool may be quoted from the tree."""

from __future__ import annotations

import os
from pathlib import Path

from bot.core.treepath import escapes, inside


def test_only_regular_files_in_the_tree_without_links_are_inside(tmp_path: Path) -> None:
    (tmp_path / "mm").mkdir()
    (tmp_path / "mm" / "a.c").write_text("int a;\n")
    os.symlink("/etc/passwd", tmp_path / "mm" / "link.h")
    os.symlink("/etc", tmp_path / "etc")
    assert inside(tmp_path, "mm/a.c") == tmp_path / "mm" / "a.c"
    for name in ("/etc/passwd", "../x", "mm/../../x", "mm/link.h", "etc/passwd", "mm"):
        assert inside(tmp_path, name) is None, name
    assert escapes(tmp_path, "/etc/passwd") and escapes(tmp_path, "mm/../../x")
    assert escapes(tmp_path, "mm/link.h") and escapes(tmp_path, "etc/passwd")
    # a generated file of the build dir is not in the tree, and leads nowhere else
    assert not escapes(tmp_path, "include/generated/autoconf.h")
    assert not escapes(tmp_path, "mm/a.c")
