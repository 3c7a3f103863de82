"""Span tracking, edit distance and text diffs: the pure logic under outcomes."""

from __future__ import annotations

from goldiff.outcomes.spans import Span, diff_edits, levenshtein, survival
from hypothesis import given, settings
from hypothesis import strategies as st


class CharModel:
    """The reference: every character carries a flag saying whether it belongs to the span.

    An edit's inserted text belongs to the span when the edit replaced some of the span's
    characters, or when it is inserted between two of them; never at an edge.
    """

    def __init__(self, text: str, start: int, end: int) -> None:
        self.chars = [(ch, start <= i < end) for i, ch in enumerate(text)]

    def apply(self, a: int, b: int, inserted: str) -> None:
        removed_in = any(flag for _, flag in self.chars[a:b])
        left = a > 0 and self.chars[a - 1][1]
        right = b < len(self.chars) and self.chars[b][1]
        joins = removed_in or (left and right)
        self.chars[a:b] = [(ch, joins) for ch in inserted]

    @property
    def text(self) -> str:
        return "".join(ch for ch, _ in self.chars)

    @property
    def span_text(self) -> str:
        flags = "".join("1" if f else "0" for _, f in self.chars)
        assert "0" not in flags.strip("0"), f"the span is not contiguous: {flags}"
        return "".join(ch for ch, flag in self.chars if flag)


edit_steps = st.lists(
    st.tuples(
        st.floats(0, 1),
        st.sampled_from([0, 0, 1, 2, 5, 40]),
        st.text(alphabet="ab\n😀", max_size=4),
    ),
    max_size=30,
)


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.text(alphabet="xy\n", max_size=12),
    accepted=st.text(alphabet="abc\n😀", min_size=1, max_size=12),
    suffix=st.text(alphabet="xy\n", max_size=12),
    steps=edit_steps,
)
def test_tracked_span_equals_replayed_text(prefix: str, accepted: str, suffix: str, steps: list) -> None:
    text = prefix + accepted + suffix
    span = Span(len(prefix), len(prefix) + len(accepted), dies_when_empty=True)
    model = CharModel(text, span.start, span.end)
    for where, length, inserted in steps:
        a = int(where * len(text))
        b = min(len(text), a + length)
        text = text[:a] + inserted + text[b:]
        span.apply(a, b - a, len(inserted))
        model.apply(a, b, inserted)
        assert model.text == text
        assert span.text(text) == model.span_text
        assert span.dead == (not any(flag for _, flag in model.chars))


def test_edits_before_shift_and_inside_change() -> None:
    text = "x = 1\ny = compute(a)\n"
    span = Span(10, 20, dies_when_empty=True)  # "compute(a)"
    assert span.text(text) == "compute(a)"
    span.apply(0, 0, 4)  # "abc\n" above
    text = "abc\n" + text
    assert span.text(text) == "compute(a)"
    span.apply(14 + 8, 1, 3)  # a → abc
    text = text[:22] + "abc" + text[23:]
    assert span.text(text) == "compute(abc)"
    span.apply(span.end, 0, 1)  # typed right after: stays outside
    assert span.text(text[: span.end] + "!" + text[span.end :]) == "compute(abc)"


def test_deleting_everything_reverts_for_good() -> None:
    span = Span(4, 8, dies_when_empty=True)
    span.apply(4, 4, 0)
    assert span.dead
    span.apply(4, 0, 3)  # typing again where it was does not revive it
    assert span.dead and span.text("abcdefghijk") == ""


def test_growing_region_takes_what_is_typed_at_its_end() -> None:
    region = Span(5, 5, grow_end=True)
    for i in range(4):
        region.apply(5 + i, 0, 1)
    assert (region.start, region.end) == (5, 9)
    region.apply(4, 1, 0)  # backspace just before it
    assert (region.start, region.end) == (4, 8)


def test_levenshtein_and_survival() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("same", "same") == 0
    assert levenshtein("return a + b", "return total") == 5
    assert survival("return a + b", "return total") == 1 - 5 / 12
    assert survival("abc", "") == 0.0
    assert survival("ab", "completely different and long") == 0.0


@settings(max_examples=300, deadline=None)
@given(old=st.text(alphabet="ab\nc", max_size=60), new=st.text(alphabet="ab\nc", max_size=60))
def test_diff_edits_rebuild_the_new_text(old: str, new: str) -> None:
    text = old
    for a, r, inserted in diff_edits(old, new):
        assert 0 <= a <= a + r <= len(text)
        text = text[:a] + inserted + text[a + r :]
    assert text == new


def test_diff_edits_of_long_texts_go_by_lines() -> None:
    old = "".join(f"line {i}\n" for i in range(2000))
    new = old.replace("line 10\n", "line ten\n").replace("line 1500\n", "")
    text = old
    edits = diff_edits(old, new)
    assert len(edits) == 2
    for a, r, inserted in edits:
        text = text[:a] + inserted + text[a + r :]
    assert text == new
