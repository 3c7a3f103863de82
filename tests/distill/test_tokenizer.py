"""The project's BPE tokenizer: trained with HF tokenizers, exported to GGUF, and
tokenizing real Python files exactly as llama.cpp does."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import gguf
import llama_cpp
import pytest
from goldiff.distill.gguf_export import write_gguf
from goldiff.distill.tokenizer import (
    MAX_TOKEN_BYTES,
    SPECIAL_TOKENS,
    GgufVocab,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from goldiff.errors import TokenizerError
from goldiff.sources.llamacpp import load_llama

from tests.tiny_models import byte_to_unicode, tiny_hparams, tiny_tensors

pytest.importorskip("tokenizers", reason="needs the goldiff[train] extra")

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _python_files(start: int, count: int) -> list[Path]:
    files = sorted(p for p in STDLIB.glob("*.py") if p.stat().st_size < 60_000)
    return files[start : start + count]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 1,500-token tokenizer trained on 40 stdlib files, and a GGUF carrying it."""
    texts = (p.read_text(encoding="utf-8", errors="replace") for p in _python_files(0, 40))
    folder = save_tokenizer(train_tokenizer(texts, vocab_size=1500), tmp_path_factory.mktemp("tok"))
    vocab = GgufVocab.from_tokenizer_json(folder)
    hp = tiny_hparams(n_vocab=len(vocab.tokens), width=64, n_head=2, n_head_kv=1, n_layer=1)
    model = write_gguf(folder / "model.gguf", hp, tiny_tensors(hp), vocab, dtype="f32")
    return folder, model


def _vocab_only(model: Path) -> llama_cpp.Llama:
    return load_llama(str(model), vocab_only=True, verbose=False)


def test_hf_and_llama_cpp_tokenize_real_python_files_identically(
    trained: tuple[Path, Path],
) -> None:
    folder, model = trained
    hf = load_tokenizer(folder)
    llm = _vocab_only(model)
    files = _python_files(40, 30)  # not seen in training
    assert len(files) == 30
    disagree = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        ours = hf.encode(text, add_special_tokens=False).ids
        theirs = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if ours != theirs:
            disagree.append(path.name)
        assert llm.detokenize(theirs).decode("utf-8") == text
    assert disagree == []


def test_special_tokens_are_single_control_tokens_with_fim_ids(
    trained: tuple[Path, Path],
) -> None:
    _, model = trained
    llm = _vocab_only(model)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    for token_id, text in enumerate(SPECIAL_TOKENS):
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == [token_id]
        assert llama_cpp.llama_vocab_is_control(vocab, token_id)
        assert len(llm.tokenize(text.encode(), add_bos=False, special=False)) > 1
    assert (
        llama_cpp.llama_vocab_fim_pre(vocab),
        llama_cpp.llama_vocab_fim_suf(vocab),
        llama_cpp.llama_vocab_fim_mid(vocab),
        llama_cpp.llama_vocab_fim_pad(vocab),
        llama_cpp.llama_vocab_eos(vocab),
    ) == (1, 2, 3, 4, 0)
    # No BOS or leading space is added to a prompt: a FIM prompt starts with its own token.
    assert llm.tokenize(b"x = 1", add_bos=True, special=False) == llm.tokenize(
        b"x = 1", add_bos=False, special=False
    )


def test_gguf_metadata_is_complete(trained: tuple[Path, Path]) -> None:
    _, model = trained
    reader = gguf.GGUFReader(str(model))

    def value(key: str) -> object:
        field = reader.get_field(key)
        assert field is not None, key
        return field.contents()

    assert value("tokenizer.ggml.model") == "gpt2"
    assert value("tokenizer.ggml.pre") == "qwen2"
    assert value("tokenizer.ggml.add_space_prefix") is False
    assert value("tokenizer.ggml.add_bos_token") is False
    merges = value("tokenizer.ggml.merges")
    assert isinstance(merges, list) and merges
    assert all(isinstance(m, str) and m.count(" ") == 1 for m in merges)


def test_tokens_are_capped_at_32_bytes(trained: tuple[Path, Path]) -> None:
    # A corpus of one 64-letter word would merge up to a single 64-letter token uncapped.
    tok = train_tokenizer(["a" * 64 + "\n"] * 20, vocab_size=300, min_frequency=1)
    decode = {c: b for b, c in byte_to_unicode().items()}

    def longest(source: object) -> int:
        vocab = GgufVocab.from_tokenizer_json(source)  # type: ignore[arg-type]
        return max(
            len(bytes(decode[c] for c in token))
            for token, kind in zip(vocab.tokens, vocab.token_types, strict=True)
            if kind == gguf.TokenType.NORMAL
        )

    assert 8 < longest(json.loads(tok.to_str())) <= MAX_TOKEN_BYTES
    assert longest(trained[0]) <= MAX_TOKEN_BYTES
    assert len(tok.encode("a" * 64).ids) > 1


def test_saved_tokenizer_round_trips_and_loads_in_transformers(
    trained: tuple[Path, Path],
) -> None:
    transformers = pytest.importorskip("transformers")
    folder, _ = trained
    text = "def f(x):\n    return x  # é\n"
    ids = load_tokenizer(folder).encode(text).ids
    fast = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert fast(text, add_special_tokens=False)["input_ids"] == ids
    assert fast.eos_token == "<|endoftext|>"
    assert fast.convert_tokens_to_ids("<|fim_middle|>") == 3
    assert fast.decode(ids) == text


def test_non_bpe_or_broken_tokenizers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="no tokenizer found"):
        GgufVocab.from_tokenizer_json(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram"}}))
    with pytest.raises(TokenizerError, match="only byte-level BPE"):
        GgufVocab.from_tokenizer_json(tmp_path)
    holey = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []}}
    with pytest.raises(TokenizerError, match="not contiguous"):
        GgufVocab.from_tokenizer_json(holey, pre="qwen2")
    # A GPT-2 style tokenizer (ByteLevel with its own regex) must not pass as qwen2.
    gpt2 = json.loads(train_tokenizer(["x = 1"], vocab_size=270).to_str())
    gpt2["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    with pytest.raises(TokenizerError, match="pass pre="):
        GgufVocab.from_tokenizer_json(gpt2)
    assert GgufVocab.from_tokenizer_json(gpt2, pre="gpt-2").pre == "gpt-2"
    with pytest.raises(TokenizerError, match="at least"):
        train_tokenizer(["x"], vocab_size=100)
