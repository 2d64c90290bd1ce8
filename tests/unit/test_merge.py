"""The auto-apply merge rules (runtime/merge.py): per file, line-based, only real overlaps
conflict. Pure functions: no I/O."""

from __future__ import annotations

from runtime.merge import merge_file, merge_files

BASE = "one\ntwo\nthree\nfour\nfive\n"


def test_changes_in_separate_regions_of_one_file_combine() -> None:
    ours = BASE.replace("one", "ONE")
    theirs = BASE.replace("five", "FIVE")
    result = merge_files({"a.ts": BASE}, {"a.ts": ours}, {"a.ts": theirs})
    assert result.conflicts == ()
    assert result.files == {"a.ts": "ONE\ntwo\nthree\nfour\nFIVE\n"}


def test_both_sides_inserting_lines_in_different_places_combine() -> None:
    ours = "zero\n" + BASE
    theirs = BASE + "six\n"
    assert merge_file(BASE, ours, theirs) == "zero\n" + BASE + "six\n"


def test_the_same_line_changed_differently_conflicts() -> None:
    ours = BASE.replace("three", "THREE")
    theirs = BASE.replace("three", "3")
    result = merge_files({"a.ts": BASE, "b.ts": "b\n"}, {"a.ts": ours, "b.ts": "b\n"},
                         {"a.ts": theirs, "b.ts": "B\n"})  # fmt: skip
    assert result.conflicts == ("a.ts",)
    assert result.files["b.ts"] == "B\n"  # the other files still merge (reported, unused)


def test_adjacent_lines_changed_on_both_sides_conflict() -> None:
    """diff3's rule (as git's): changes need an unchanged line between them."""
    ours = BASE.replace("two", "TWO")
    theirs = BASE.replace("three", "THREE")
    assert merge_files({"a": BASE}, {"a": ours}, {"a": theirs}).conflicts == ("a",)


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    both = BASE.replace("two", "2")
    assert merge_files({"a": BASE}, {"a": both}, {"a": both}).files == {"a": both}


def test_a_file_changed_on_one_side_only_takes_that_side() -> None:
    base = {"draft.ts": "d\n", "run.ts": "r\n", "same.ts": "s\n"}
    ours = {"draft.ts": "D\n", "run.ts": "r\n", "same.ts": "s\n"}
    theirs = {"draft.ts": "d\n", "run.ts": "R\n", "same.ts": "s\n"}
    result = merge_files(base, ours, theirs)
    assert result == merge_files(base, ours, theirs)  # deterministic
    assert result.conflicts == ()
    assert result.files == {"draft.ts": "D\n", "run.ts": "R\n", "same.ts": "s\n"}


def test_added_files_rules() -> None:
    base: dict[str, str] = {}
    # added by one side: kept
    assert merge_files(base, {}, {"new.ts": "n\n"}).files == {"new.ts": "n\n"}
    assert merge_files(base, {"new.ts": "n\n"}, {}).files == {"new.ts": "n\n"}
    # added by both with the same content: kept once
    assert merge_files(base, {"x.ts": "x\n"}, {"x.ts": "x\n"}).files == {"x.ts": "x\n"}
    # added by both with different contents: nothing to merge from
    assert merge_files(base, {"x.ts": "a\n"}, {"x.ts": "b\n"}).conflicts == ("x.ts",)


def test_deleted_files_rules() -> None:
    base = {"gone.ts": BASE}
    # deleted by one side, untouched by the other: deleted
    assert merge_files(base, {}, base).files == {}
    assert merge_files(base, base, {}).files == {}
    # deleted by both: deleted
    assert merge_files(base, {}, {}).files == {}
    # deleted by one side, modified by the other: conflict either way round
    changed = {"gone.ts": BASE.replace("one", "1")}
    assert merge_files(base, {}, changed).conflicts == ("gone.ts",)
    assert merge_files(base, changed, {}).conflicts == ("gone.ts",)


def test_binary_content_is_never_line_merged() -> None:
    base, ours, theirs = "a\x00\nb\nc\nd\n", "A\x00\nb\nc\nd\n", "a\x00\nb\nc\nD\n"
    assert merge_files({"f": base}, {"f": ours}, {"f": theirs}).conflicts == ("f",)
    # one-sided changes still need no merge
    assert merge_files({"f": base}, {"f": base}, {"f": theirs}).files == {"f": theirs}


def test_line_endings_and_a_missing_final_newline_are_kept() -> None:
    base = "a\r\nb\r\nc\r\nd\r\ne"
    ours = base.replace("a\r\n", "A\r\n")
    theirs = base.replace("\r\ne", "\r\nE")
    assert merge_file(base, ours, theirs) == "A\r\nb\r\nc\r\nd\r\nE"
