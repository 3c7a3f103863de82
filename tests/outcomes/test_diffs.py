"""Gold diffs: unified diffs with real line numbers, validated with unidiff."""

from __future__ import annotations

from goldiff.outcomes.diffs import unified_diff, validate
from goldiff.outcomes.suggestions import cut_written
from unidiff import PatchSet


def apply_patch(text: str, diff: str) -> str:
    """Apply a one-file unified diff to `text` (the test's own applier, through unidiff)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for hunk in PatchSet(diff)[0]:
        start = hunk.source_start - 1 if hunk.source_length else hunk.source_start
        out.extend(lines[pos:start])
        pos = start
        last_added = False
        for line in hunk:
            value = line.value
            if line.line_type == "\\":  # the line before has no final newline
                if last_added:
                    out[-1] = out[-1].rstrip("\n")
                continue
            last_added = line.is_context or line.is_added
            if line.is_context or line.is_removed:
                assert lines[pos].rstrip("\n") == value.rstrip("\n"), (lines[pos], value)
                pos += 1
            if line.is_context or line.is_added:
                out.append(value)
    out.extend(lines[pos:])
    return "".join(out)


def test_diff_carries_file_line_numbers() -> None:
    before = "def add(a, b):\n    pass\n"
    after = "def add(a, b):\n    return a + b\n"
    diff = unified_diff(before, after, "src/app.py", old_line=40, new_line=42)
    assert diff == (
        "--- a/src/app.py\n"
        "+++ b/src/app.py\n"
        "@@ -41,2 +43,2 @@\n"
        " def add(a, b):\n"
        "-    pass\n"
        "+    return a + b\n"
    )
    assert validate(diff)
    whole_before = "".join(f"# {i}\n" for i in range(40)) + before + "tail\n"
    whole_after = "".join(f"# {i}\n" for i in range(42)) + after + "tail\n"
    assert apply_patch(whole_before, diff) == whole_before.replace("    pass\n", "    return a + b\n")
    assert whole_after.endswith(apply_patch(before, unified_diff(before, after, "src/app.py")) + "tail\n")


def test_missing_final_newline_is_marked() -> None:
    diff = unified_diff("x = 1\ny = 2", "x = 1\ny = 3", "a.py")
    assert diff.endswith("-y = 2\n\\ No newline at end of file\n+y = 3\n\\ No newline at end of file\n")
    assert validate(diff)
    assert apply_patch("x = 1\ny = 2", diff) == "x = 1\ny = 3"


def test_insertion_into_an_empty_region_and_no_change() -> None:
    diff = unified_diff("", "import os\n", "a.py", old_line=3, new_line=3)
    assert "@@ -3,0 +4 @@\n+import os\n" in diff
    assert validate(diff)
    assert unified_diff("same\n", "same\n", "a.py") == ""
    assert not validate("not a diff")


def test_written_instead_is_cut_at_line_or_block() -> None:
    assert cut_written("pass\n    x = 1\n", "return a + b") == "pass"
    block = "if x:\n    y = 1\n\nprint(y)\n"
    assert cut_written(block, "if a:\n    b()\n") == "if x:\n    y = 1"
    assert cut_written("", "return 1") == ""
