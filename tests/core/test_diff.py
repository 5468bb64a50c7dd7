"""The one diff parser: paths, numbered lines, hunks, the hunk finder, the excerpt format."""

from __future__ import annotations

from bot.core.diff import excerpt, find_hunk, parse_diff

DIFF = (
    """\
diff --git a/mm/filemap.c b/mm/filemap.c
index 1..2 100644
--- a/mm/filemap.c
+++ b/mm/filemap.c
@@ -3,3 +3,4 @@ void f(void)
 {
 \tBUG_ON(x);
+\tfolio_migrate_flags(folio, folio);
 \tspin_lock(&l);
@@ -40,2 +41,2 @@ void g(void)
-\told();
+\tnew();
 }
diff --git a/include/linux/b.h b/include/linux/b.h
--- a/include/linux/b.h
+++ b/include/linux/b.h
@@ -1,4 +1,3 @@
 struct b {
-\tint (*migratepage)(struct b *, int mode);
 \tint pages;
 };
diff --git a/Documentation/x.rst b/Documentation/x.rst
new file mode 100644
--- /dev/null
+++ b/Documentation/x.rst
@@ -0,0 +1 @@
+new
diff --git a/mm/gone.c b/mm/gone.c
deleted file mode 100644
--- a/mm/gone.c
+++ /dev/null
@@ -1 +0,0 @@
-int gone;
diff --git a/mm/old.c b/mm/new.c
similarity index 100%
rename from mm/old.c
rename to mm/new.c
"""
    + "-- \n2.39.5\n"
)  # format-patch's signature: "-- " ends in a space


def test_paths_lines_and_hunks() -> None:
    files = parse_diff(DIFF)
    assert [(f.old_path, f.new_path) for f in files] == [
        ("mm/filemap.c", "mm/filemap.c"),
        ("include/linux/b.h", "include/linux/b.h"),
        (None, "Documentation/x.rst"),
        ("mm/gone.c", None),
        ("mm/old.c", "mm/new.c"),
    ]
    c, h, doc, gone, moved = files
    assert c.added == ((5, "\tfolio_migrate_flags(folio, folio);"), (41, "\tnew();"))
    assert c.removed == ((40, "\told();"),)
    assert [list(x.new_lines) for x in c.hunks] == [[3, 4, 5, 6], [41, 42]]
    assert h.removed_lines == {2: "\tint (*migratepage)(struct b *, int mode);"}
    assert (c.is_c, h.is_c, doc.is_c) == (True, True, False)
    assert doc.added_lines == {1: "new"} and doc.path == "Documentation/x.rst"
    assert gone.deleted and gone.path == "mm/gone.c" and gone.removed == ((1, "int gone;"),)
    assert moved.hunks == () and moved.path == "mm/new.c"


def test_a_removed_line_that_looks_like_a_header_stays_in_its_hunk() -> None:
    diff = (
        "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,2 +1,1 @@\n--- a/not-a-header\n keep\n"
    )
    (f,) = parse_diff(diff)
    assert f.removed == ((1, "-- a/not-a-header"),) and f.new_path == "x.c"


def test_find_hunk() -> None:
    assert find_hunk(DIFF, "mm/filemap.c", 40).startswith("@@ -40,2 +41,2 @@")
    assert find_hunk(DIFF, "mm/filemap.c", None).startswith("@@ -3,3 +3,4 @@")
    assert find_hunk(DIFF, "mm/filemap.c", 999).startswith("@@ -3,3")  # else its first hunk
    assert find_hunk(DIFF, "nope.c", 1) == ""


def test_excerpt_format() -> None:
    lines = [f"line {n}" for n in range(1, 13)]
    assert excerpt(lines, 10, 1) == "   9\tline 9\n> 10\tline 10\n  11\tline 11"
    assert excerpt(["a", "b"], 1) == "> 1\ta\n  2\tb"
