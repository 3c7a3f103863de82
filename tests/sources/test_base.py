"""The rules every source's suggestion obeys: where it stops, what is dropped."""

from __future__ import annotations

from goldiff.sources.base import CompletionRequest, StopRule, finish_text


def req(prefix: str, suffix: str = "") -> CompletionRequest:
    return CompletionRequest(prefix=prefix, suffix=suffix)


def test_mid_line_finishes_the_line() -> None:
    rule = StopRule.for_cursor("x = foo(", "bar)\n")
    assert rule == StopRule(multiline=False, min_indent=0)
    assert rule.cut("a, b") is None
    assert rule.cut("a, b\nnext") == 4


def test_empty_line_runs_to_the_end_of_the_block() -> None:
    prefix = "def f(x):\n    y = 1\n    "
    rule = StopRule.for_cursor(prefix, "\n")
    assert rule == StopRule(multiline=True, min_indent=4)
    text = "if y:\n        return x\n    return 0\ndef g():\n"
    assert text[: rule.cut(text)] == "if y:\n        return x\n    return 0"


def test_after_an_opener_the_block_body_is_suggested() -> None:
    rule = StopRule.for_cursor("def f(x):", "\n")
    assert rule.multiline and rule.min_indent == 1
    text = "\n    return x\n\ndef g():"
    assert text[: rule.cut(text)] == "\n    return x"


def test_a_blank_line_after_code_ends_a_block() -> None:
    rule = StopRule.for_cursor("", "")
    text = "import os\nimport sys\n\nprint(1)\n"
    assert text[: rule.cut(text)] == "import os\nimport sys"


def test_finish_text_trims_what_the_suffix_already_has() -> None:
    assert finish_text("a, b)", req("x = foo(", ")\n")) == "a, b"
    assert finish_text("a, b\nmore", req("x = foo(", ")\n")) == "a, b"
    assert finish_text("  ", req("x = ", "\n")) == ""


def test_finish_text_drops_a_suggestion_that_only_repeats_the_suffix() -> None:
    assert finish_text("return x", req("def f(x):\n    ", "return x\n")) == ""
    assert finish_text("return y", req("def f(x):\n    ", "return x\n")) == "return y"
