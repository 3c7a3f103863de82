"""FIM templates chosen from a vocabulary (the families' real token spellings)."""

from __future__ import annotations

import pytest
from goldiff.errors import ModelLoadError
from goldiff.sources.fim import PREFIX, SUFFIX, TEMPLATES, FimPrompt, VocabInfo, resolve_template


def vocab(tokens: list[str], name: str = "", **kw: object) -> VocabInfo:
    ids = {t: 100 + i for i, t in enumerate(tokens)}
    return VocabInfo(special_id=ids.get, name=name, **kw)  # type: ignore[arg-type]


def suffix_first(fim: FimPrompt) -> bool:
    return fim.layout.index(SUFFIX) < fim.layout.index(PREFIX)


def test_every_family_resolves_from_its_own_tokens() -> None:
    for template in TEMPLATES:
        tokens = [*template.control_tokens, *template.stop]
        fim = resolve_template(vocab(tokens, name=template.hints[0], bos_id=1))
        assert fim.template == template.name
        prompt = fim.build([7, 8], [9])
        assert 7 in prompt and 9 in prompt
        if template.name == "codestral":
            assert suffix_first(fim) and prompt == [1, 100, 9, 101, 7, 8]
        else:
            assert prompt.index(7) < prompt.index(9)


def test_qwen_layout_and_stops() -> None:
    tokens = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>", "<|fim_pad|>"]
    fim = resolve_template(vocab(tokens, name="Qwen2.5 Coder 1.5B", eog_ids=frozenset({5})))
    assert fim.template == "qwen2.5-coder"
    assert fim.layout == (100, PREFIX, 101, SUFFIX, 102)
    assert fim.stop_ids == {103, 104, 5}
    assert fim.build([1, 2], [3]) == [100, 1, 2, 101, 3, 102]


def test_the_projects_own_model_is_named_so() -> None:
    tokens = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]
    assert resolve_template(vocab(tokens, name="goldiff-default", arch="qwen2")).template == "goldiff"
    assert resolve_template(vocab(tokens, name="mystery", arch="qwen2")).template == "qwen2.5-coder"


def test_unknown_spellings_fall_back_to_gguf_fim_ids() -> None:
    fim = resolve_template(vocab([], fim_ids=(5, 6, 7)))
    assert fim.template == "gguf" and fim.build([1], [2]) == [5, 1, 6, 2, 7]


def test_a_model_without_fim_tokens_is_refused_with_advice() -> None:
    with pytest.raises(ModelLoadError, match="fill-in-the-middle"):
        resolve_template(vocab(["<s>"], name="llama chat", fim_ids=(-1, -1, -1)))


def test_a_suggestion_in_the_indentation_starts_at_the_cursor() -> None:
    from goldiff.sources.base import CompletionRequest, finish_text

    request = CompletionRequest(prefix="def add(a, b):\n    ", suffix="\n")
    assert finish_text("    return a + b", request) == "return a + b"
    # Elsewhere on a line, leading whitespace is the model's to keep.
    assert finish_text(" + b", CompletionRequest(prefix="x = a", suffix="\n")) == " + b"
