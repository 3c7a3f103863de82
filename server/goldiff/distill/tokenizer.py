"""The project's tokenizer: a byte-level BPE and its GGUF form.

Training uses HF ``tokenizers`` (part of the ``goldiff[train]`` extra, imported lazily) with
the Qwen2 split regex as pre-tokenizer followed by ``ByteLevel(use_regex=False)``, so that
llama.cpp, told ``tokenizer.ggml.pre = "qwen2"``, splits text exactly as the HF tokenizer
does. Tokens are capped at 32 bytes because llama-cpp-python 0.3.36 decodes pieces through
a 32-byte buffer and silently drops longer ones. The GGUF side (:class:`GgufVocab`) reads a
``tokenizer.json`` as plain JSON, so exporting or serving never needs ``tokenizers``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gguf

from goldiff.errors import TokenizerError
from goldiff.prompts import END_OF_TEXT, FIM_MIDDLE, FIM_PAD, FIM_PREFIX, FIM_SUFFIX, SPECIAL_TOKENS

if TYPE_CHECKING:
    import tokenizers

#: Qwen2's pre-tokenizer split pattern; llama.cpp implements it under ``pre = "qwen2"``.
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: Longest token in bytes that llama-cpp-python 0.3.36 can decode (see module docstring).
MAX_TOKEN_BYTES = 32
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class GgufVocab:
    """Everything llama.cpp's ``gpt2`` tokenizer reads from a GGUF file.

    ``tokens[i]`` is the byte-level spelling of token ``i``; ``merges`` are ``"a b"`` strings
    in rank order. Special ids refer to control tokens (type 3).
    """

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    eos_id: int
    fim_pre_id: int | None = None
    fim_suf_id: int | None = None
    fim_mid_id: int | None = None
    fim_pad_id: int | None = None
    pad_id: int | None = None
    pre: str = "qwen2"

    def padded_to(self, n_vocab: int) -> GgufVocab:
        """This vocabulary with unused ``[PADi]`` tokens appended up to ``n_vocab`` entries.

        Models often round their embedding matrix up; llama.cpp requires one token per row.
        """
        if n_vocab < len(self.tokens):
            raise TokenizerError(
                f"the model has {n_vocab} embedding rows but the tokenizer has "
                f"{len(self.tokens)} tokens; export with the tokenizer the model was trained with"
            )
        extra = n_vocab - len(self.tokens)
        return replace(
            self,
            tokens=[*self.tokens, *(f"[PAD{i}]" for i in range(len(self.tokens), n_vocab))],
            token_types=[*self.token_types, *([int(gguf.TokenType.UNUSED)] * extra)],
        )

    def add_to(self, writer: gguf.GGUFWriter) -> None:
        """Write the ``tokenizer.ggml.*`` keys."""
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.token_types)
        writer.add_token_merges(self.merges)
        # Qwen2 has no BOS of its own; point it at EOS as Qwen's GGUFs do, and never add it.
        writer.add_bos_token_id(self.eos_id)
        writer.add_eos_token_id(self.eos_id)
        writer.add_eot_token_id(self.eos_id)
        if self.pad_id is not None:
            writer.add_pad_token_id(self.pad_id)
        # llama.cpp would otherwise guess: a leading space changes every first token.
        writer.add_add_bos_token(False)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(False)
        keys = gguf.Keys.Tokenizer
        for key, value in (
            (keys.FIM_PRE_ID, self.fim_pre_id),
            (keys.FIM_SUF_ID, self.fim_suf_id),
            (keys.FIM_MID_ID, self.fim_mid_id),
            (keys.FIM_PAD_ID, self.fim_pad_id),
        ):
            if value is not None:
                writer.add_uint32(key, value)

    @classmethod
    def from_tokenizer_json(
        cls, source: str | Path | Mapping[str, Any], *, pre: str | None = None
    ) -> GgufVocab:
        """Read a byte-level BPE ``tokenizer.json`` (a file, its folder, or parsed JSON).

        ``pre`` is llama.cpp's name for the tokenizer's pre-tokenizer. By default the JSON
        must use the project's (Qwen2) split, because any other one written as ``qwen2``
        would load and silently tokenize differently from training.
        """
        data = (
            source if isinstance(source, Mapping) else json.loads(_tokenizer_file(source).read_text("utf-8"))
        )
        model = data.get("model") or {}
        if model.get("type") != "BPE":
            raise TokenizerError(f"only byte-level BPE tokenizers can be exported, not {model.get('type')!r}")
        if pre is None:
            pre = _detect_pre(data)
        vocab: dict[str, int] = dict(model.get("vocab") or {})
        kinds: dict[int, gguf.TokenType] = {}  # added tokens: control if special, else user-defined
        for added in data.get("added_tokens") or []:
            vocab[added["content"]] = int(added["id"])
            special = added.get("special", False)
            kinds[int(added["id"])] = gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED
        n_tokens = max(vocab.values()) + 1 if vocab else 0
        tokens: list[str | None] = [None] * n_tokens
        for text, token_id in vocab.items():
            tokens[token_id] = text
        missing = [i for i, t in enumerate(tokens) if t is None]
        if missing:
            raise TokenizerError(f"token ids are not contiguous (first hole: {missing[0]})")
        types = [int(kinds.get(i, gguf.TokenType.NORMAL)) for i in range(n_tokens)]
        merges = [m if isinstance(m, str) else f"{m[0]} {m[1]}" for m in model.get("merges", [])]
        if END_OF_TEXT not in vocab:
            raise TokenizerError(f"the tokenizer has no {END_OF_TEXT} token")
        return cls(
            tokens=[t for t in tokens if t is not None],
            token_types=types,
            merges=merges,
            eos_id=vocab[END_OF_TEXT],
            fim_pre_id=vocab.get(FIM_PREFIX),
            fim_suf_id=vocab.get(FIM_SUFFIX),
            fim_mid_id=vocab.get(FIM_MIDDLE),
            fim_pad_id=vocab.get(FIM_PAD),
            pad_id=vocab.get(FIM_PAD, vocab[END_OF_TEXT]),
            pre=pre,
        )


def _detect_pre(data: Mapping[str, Any]) -> str:
    """``"qwen2"`` when ``data`` pre-tokenizes as :func:`train_tokenizer` does, else an error."""
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["Split", "ByteLevel"]:
        split, byte_level = steps
        if (
            split.get("pattern", {}).get("Regex") == QWEN2_SPLIT_REGEX
            and split.get("behavior") == "Isolated"
            and not split.get("invert", False)
            and not byte_level.get("add_prefix_space", False)
            and not byte_level.get("use_regex", True)
        ):
            return "qwen2"
    raise TokenizerError(
        "this tokenizer does not pre-tokenize like Goldiff's (Qwen2 split regex, then "
        "byte-level), so llama.cpp would split text differently; pass pre= with llama.cpp's "
        "name for its pre-tokenizer (e.g. 'llama-bpe') if you know it"
    )


def _tokenizer_file(source: str | Path) -> Path:
    """``tokenizer.json`` itself, or in the folder ``source``."""
    path = Path(source)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise TokenizerError(f"no tokenizer found at {path}; train one or pass its folder")
    return path


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8192,
    *,
    min_frequency: int = 2,
) -> tokenizers.Tokenizer:
    """Train the project's byte-level BPE on ``texts`` (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise TokenizerError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=MAX_TOKEN_BYTES,
        show_progress=False,
    )
    tok.train_from_iterator((t for t in texts if t), trainer=trainer)
    return tok


def save_tokenizer(tok: tokenizers.Tokenizer, out_dir: str | Path) -> Path:
    """Write ``tokenizer.json`` and a ``tokenizer_config.json`` that transformers reads.

    ``transformers.AutoTokenizer.from_pretrained(out_dir)`` then gives a fast tokenizer with
    the same special tokens. Returns the folder.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / TOKENIZER_FILE))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": END_OF_TEXT,
        "pad_token": FIM_PAD,
        "bos_token": None,
        "unk_token": None,
        "add_bos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1 << 20,
        "additional_special_tokens": list(SPECIAL_TOKENS[1:]),
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_tokenizer(path: str | Path) -> tokenizers.Tokenizer:
    """A tokenizer saved by :func:`save_tokenizer` (the folder or the JSON file) that never
    turns text like ``<|fim_prefix|>`` into a control token: code that mentions the tokens
    (this file does) must stay plain text."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_tokenizer_file(path)))
    tokenizer.encode_special_tokens = True
    return tokenizer
