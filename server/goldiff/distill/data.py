"""Training data: fill-in-the-middle pretraining windows and SFT rows, as token ids.

Two kinds of data feed `train.py`. *Corpus* text is cut into segments at line boundaries,
a configurable fraction of them rearranged in PSM order
(``<|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle``), tokenised once and
packed into a flat uint16 file that training reads through a memmap, so an epoch costs no
tokenisation. *SFT rows* are a user's exported gold (``prompt``/``completion`` plus the raw
``prefix``/``suffix``): each becomes exactly the prompt the local source sends at serving
time, ``[fim_pre] + tok(prefix) + [fim_suf] + tok(suffix) + [fim_mid]``, followed by the
completion, with the loss on the completion only. Every random choice (FIM cuts, window
offsets, row order) is derived from the seed and the step, so a resumed run sees exactly the
batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from goldiff.distill.corpus import is_validation
from goldiff.errors import ConfigError, NotEnoughDataError
from goldiff.prompts import SPECIAL_TOKENS

IGNORE_INDEX = -100  # the label value torch's cross-entropy skips

SEGMENT_CHARS = 3000  # ~800 tokens: a segment and its FIM rearrangement fit one window


@dataclass(frozen=True)
class SpecialIds:
    eos: int
    fim_prefix: int
    fim_suffix: int
    fim_middle: int

    @classmethod
    def of(cls, tokenizer: Any, *, fim: bool = True) -> SpecialIds:
        """The ids; `fim=False` asks only for <|endoftext|> (a base without FIM tokens, such
        as a pulled left-to-right model, trains and is served with prefix prompts)."""
        names = SPECIAL_TOKENS[:4] if fim else SPECIAL_TOKENS[:1]
        ids = [tokenizer.token_to_id(t) for t in names]
        if any(i is None for i in ids):
            raise ConfigError(
                f"The tokenizer lacks the special tokens {', '.join(names)}"
                + (": a base without FIM tokens trains with prefix prompts" if fim else "")
            )
        return cls(*ids) if fim else cls(ids[0], -1, -1, -1)  # no FIM ids: never used then


# --------------------------------------------------------------------------- corpus packing


def split_segments(text: str, max_chars: int = SEGMENT_CHARS, clip: bool = False) -> list[str]:
    """Cut a document at line boundaries into pieces of at most ~max_chars (exactly, with
    `clip`: a longer line is cut to max_chars)."""
    segments: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > max_chars and current:
            segments.append("".join(current))
            current, size = [], 0
        line = line[:max_chars] if clip else line
        current.append(line)
        size += len(line)
    if current:
        segments.append("".join(current))
    return segments


def fim_split(segment: str, rng: random.Random) -> tuple[str, str, str]:
    """Choose the middle the way an editor's cursor and an inline suggestion do.

    The start is where a cursor rests when a suggestion is asked for: usually right after a
    space, bracket, dot or line start (70%), sometimes inside an identifier being typed.
    The middle is mostly the rest of the line or a few more lines, and then ends *before* a
    newline, so the suffix starts with one: that is what the editor sends when the cursor is
    at the end of a line, the most common case. Sometimes it is an arbitrary span (the
    cursor inside brackets). Uniformly random starts, or middles that swallow the newline,
    teach conventions that serving never shows (see models/README.md).
    """
    start = rng.randrange(len(segment) + 1)
    if rng.random() < 0.7:
        while 0 < start < len(segment) and (segment[start - 1].isalnum() or segment[start - 1] == "_"):
            start -= 1
    kind = rng.random()
    if kind < 0.8:
        end = _line_end(segment, start)
        # At a line end, the rest of the line is empty: take the next line instead.
        extra = (rng.randint(1, 4) if kind >= 0.5 else 0) + (end == start)
        for _ in range(extra):
            if end < len(segment):
                end = _line_end(segment, end + 1)
    else:  # any span up to 512 characters
        end = min(len(segment), start + rng.randint(0, 512))
    return segment[:start], segment[start:end], segment[end:]


def _line_end(text: str, i: int) -> int:
    """Index of the newline that ends the line holding position i (len(text) if none)."""
    j = text.find("\n", i)
    return len(text) if j < 0 else j


def encode_documents(
    texts: list[str],
    tokenizer: Any,
    fim_rate: float,
    rng: random.Random,
) -> list[int]:
    """Token ids for a batch of documents, each followed by <|endoftext|>."""
    special = SpecialIds.of(tokenizer)
    # Build a plan of pieces first, then tokenise every piece in one parallel call.
    plan: list[list[int | str]] = []
    for text in texts:
        doc: list[int | str] = []
        for segment in split_segments(text):
            if rng.random() < fim_rate:
                prefix, middle, suffix = fim_split(segment, rng)
                doc += [special.fim_prefix, prefix, special.fim_suffix, suffix]
                doc += [special.fim_middle, middle, special.eos]
            else:
                doc.append(segment)
        if not doc or doc[-1] != special.eos:
            doc.append(special.eos)
        plan.append(doc)
    pieces = [p for doc in plan for p in doc if isinstance(p, str)]
    encoded = iter(tokenizer.encode_batch(pieces, add_special_tokens=False))
    ids: list[int] = []
    for doc in plan:
        for p in doc:
            if isinstance(p, str):
                ids.extend(next(encoded).ids)
            else:
                ids.append(p)
    return ids


def pack_corpus(
    documents: Iterable[tuple[str, str]],
    tokenizer: Any,
    out_dir: Path,
    fim_rate: float,
    seed: int,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Tokenise ``(split, text)`` documents into ``train.bin`` / ``val.bin`` (uint16).

    Returns (and writes to ``meta.json``) the token counts, which the model card reports.
    """
    if tokenizer.get_vocab_size() > 65536:
        raise ConfigError("pack_corpus stores uint16 ids; use a tokenizer of at most 65536 tokens.")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    counts = {"train": 0, "val": 0}
    docs = {"train": 0, "val": 0}
    files = {s: (out_dir / f"{s}.bin.tmp").open("wb") for s in counts}
    pending: dict[str, list[str]] = {"train": [], "val": []}
    seen_bytes = 0

    def flush(split: str) -> None:
        if pending[split]:
            ids = encode_documents(pending[split], tokenizer, fim_rate, rng)
            np.asarray(ids, dtype=np.uint16).tofile(files[split])
            counts[split] += len(ids)
            pending[split] = []

    try:
        for split, text in documents:
            if max_bytes is not None and seen_bytes >= max_bytes:
                break
            seen_bytes += len(text)
            pending[split].append(text)
            docs[split] += 1
            if len(pending[split]) >= 512:  # documents tokenised in one parallel call
                flush(split)
        for split in counts:
            flush(split)
    finally:
        for f in files.values():
            f.close()
    for split in counts:
        (out_dir / f"{split}.bin.tmp").replace(out_dir / f"{split}.bin")
    meta = {
        "tokens": counts,
        "documents": docs,
        "bytes": seen_bytes,
        "fim_rate": fim_rate,
        "seed": seed,
        "vocab_size": tokenizer.get_vocab_size(),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


class TokenWindows:
    """Random windows of ``seq_len + 1`` tokens from a packed split, chosen by (seed, step)."""

    def __init__(self, path: Path, seq_len: int, *, split: str, needed: int = 1) -> None:
        self.seq_len = seq_len
        available = path.stat().st_size // 2  # uint16 ids (an empty file cannot be mapped)
        minimum = (seq_len + 1) * needed
        if available < minimum:
            raise NotEnoughDataError(
                f"The {split} split has {available} tokens; at least {minimum} are needed "
                f"({needed} window(s) of seq_len+1={seq_len + 1}). Add more code to the corpus "
                "(raise corpus_max_bytes) or lower seq_len."
            )
        self.tokens = np.memmap(path, dtype=np.uint16, mode="r")

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(
        self, batch_size: int, seed: int, step: int, micro: int = 0, *, rank: int = 0, world: int = 1
    ) -> dict[str, torch.Tensor]:
        """Process `rank`'s `batch_size` windows of the step's global batch of `batch_size * world`.

        The global batch depends only on (seed, step, micro), so N processes together train
        on exactly the windows one process would with an N times larger batch, and a run
        resumed on another number of processes continues with the same data.
        ``label_count`` is the labelled tokens of the whole global batch.
        """
        g = torch.Generator().manual_seed(_mix(seed, step, micro))
        high = len(self.tokens) - self.seq_len - 1
        offsets = torch.randint(0, high + 1, (batch_size * world,), generator=g).tolist()
        offsets = offsets[rank * batch_size : (rank + 1) * batch_size]
        rows = np.stack([self.tokens[o : o + self.seq_len + 1] for o in offsets]).astype(np.int64)
        data = torch.from_numpy(rows)
        count = torch.tensor(batch_size * world * self.seq_len)
        return {"input_ids": data[:, :-1], "labels": data[:, 1:], "label_count": count}


def _mix(*parts: int) -> int:
    """A 63-bit seed from several integers, stable across processes and Python versions."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# --------------------------------------------------------------------------- SFT rows


def encode_sft_row(
    row: dict[str, Any], tokenizer: Any, seq_len: int, prompt: str = "fim", heal: bool = False
) -> tuple[list[int], list[int]]:
    """(input ids, labels) of one SFT row, in the shape the model is served with.

    `prompt` is the serving profile's prompt mode (`sources/profile.py`): "fim" puts the
    FIM prompt before the completion; "prefix" is the text before the cursor read left to
    right, as a prefix-only model is asked (`heal`: with token healing). A row
    `{"text": ...}` (the workspace's own code, for repository adaptation) is plain text
    with every token labelled.
    """
    if "completion" not in row:
        if isinstance(row.get("text"), str):
            ids = tokenizer.encode(row["text"], add_special_tokens=False).ids[: seq_len + 1]
            return ids, list(ids)
        raise ConfigError(
            "An SFT row needs 'completion' (and 'prefix'/'suffix' or 'prompt'); "
            "export with `goldiff export --format sft`."
        )
    prefix = row["prefix"] if row.get("prefix") is not None else row.get("prompt") or ""
    suffix = row.get("suffix") or ""
    if prompt == "prefix":
        return _encode_prefix_row(prefix, row["completion"], tokenizer, seq_len, heal)
    if prompt != "fim":
        raise ConfigError(f"the prompt mode is fim or prefix, not {prompt!r}")
    return _encode_fim_row(prefix, suffix, row["completion"], tokenizer, seq_len)


def _encode_fim_row(
    prefix: str, suffix: str, completion_text: str, tokenizer: Any, seq_len: int
) -> tuple[list[int], list[int]]:
    """The serving-time FIM prompt, then the completion and its end-of-text.

    Labels are IGNORE_INDEX on the prompt, so only the completion (and the closing
    <|endoftext|>, which teaches the model where to stop) carry loss. Long contexts keep the
    text nearest the cursor: the prefix is cut on the left, the suffix on the right.
    """
    special = SpecialIds.of(tokenizer)
    completion = [*tokenizer.encode(completion_text, add_special_tokens=False).ids, special.eos]
    completion = completion[: max(1, seq_len // 2)]
    pre = tokenizer.encode(prefix, add_special_tokens=False).ids
    suf = tokenizer.encode(suffix, add_special_tokens=False).ids
    budget = seq_len + 1 - len(completion) - 3
    suf = suf[: budget // 4]  # the suffix matters less than the text before the cursor
    pre = pre[max(0, len(pre) - (budget - len(suf))) :]
    prompt = [special.fim_prefix, *pre, special.fim_suffix, *suf, special.fim_middle]
    ids = prompt + completion
    labels = [IGNORE_INDEX] * len(prompt) + completion
    return ids, labels


def _encode_prefix_row(
    prefix: str, completion: str, tokenizer: Any, seq_len: int, heal: bool
) -> tuple[list[int], list[int]]:
    """The text before the cursor, then the completion, tokenized as the server does.

    With token healing (`LocalSource.build_prompt`) the prompt's last token is dropped
    unless the prefix ends a line, and the answer must start with its text: the row's
    answer is then that text and the completion, so the model learns exactly the question
    it is asked. No end-of-text: a left-to-right model is stopped by the serving rules,
    the first of which is the end of the line, so the answer ends with a newline after the
    gold: without it a fine-tune never sees where a suggestion ends and runs on past it
    (measured on 80 held-out rows: 11 answers ran on past the gold, against 2 for the
    base). Not the rest of the line from the suffix: at a line start that is the line
    below (the developer inserts a line above it in about half of the rows), and with it
    in the middle of lines the held-out accept proxy fell from 28.8% to 21.3%.
    """
    encoding = tokenizer.encode(prefix, add_special_tokens=False)
    context = list(encoding.ids)
    head = ""
    if heal and context and not prefix.endswith("\n"):
        head = prefix[encoding.offsets[-1][0] :]
        context = context[:-1]
    line_end = "" if completion.endswith("\n") else "\n"
    answer = (
        tokenizer.encode(head + completion + line_end, add_special_tokens=False).ids if completion else []
    )
    answer = answer[: max(1, seq_len // 2)]
    context = context[-(seq_len + 1 - len(answer)) :]  # the answer is at most half the row
    return context + answer, [IGNORE_INDEX] * len(context) + answer


class SFTRows:
    """Encoded SFT rows and padded batches of them, chosen by (seed, step)."""

    def __init__(self, encoded: list[tuple[list[int], list[int]]], pad_id: int) -> None:
        self.encoded = encoded
        self.pad_id = pad_id
        # Supervised tokens per row (labels shifted by one, as collate does).
        self.labelled = [sum(1 for t in lab[1:] if t != IGNORE_INDEX) for _, lab in encoded]

    def __len__(self) -> int:
        return len(self.encoded)

    def batch(
        self, batch_size: int, seed: int, step: int, micro: int = 0, *, rank: int = 0, world: int = 1
    ) -> dict[str, torch.Tensor]:
        """Process `rank`'s share of the step's global batch (see `TokenWindows.batch`)."""
        g = torch.Generator().manual_seed(_mix(seed, step, micro))
        picks = torch.randint(0, len(self.encoded), (batch_size * world,), generator=g).tolist()
        count = torch.tensor(sum(self.labelled[i] for i in picks))
        mine = picks[rank * batch_size : (rank + 1) * batch_size]
        return {**self.collate([self.encoded[i] for i in mine]), "label_count": count}

    def collate(self, items: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        # Inputs and labels are shifted here (labels[t] is the token after inputs[t]), the
        # same convention as TokenWindows, so train.py computes one kind of loss.
        width = max(len(ids) for ids, _ in items) - 1
        inputs = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, (ids, lab) in enumerate(items):
            n = len(ids) - 1
            inputs[i, :n] = torch.tensor(ids[:-1])
            labels[i, :n] = torch.tensor(lab[1:])
            mask[i, :n] = 1
        return {"input_ids": inputs, "labels": labels, "attention_mask": mask}


def split_rows(
    rows: list[dict[str, Any]], val_fraction: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out rows by a hash of their stable id (or content), so the split is repeatable.

    The export already splits by time for evaluation; this split only watches overfitting.
    """
    train: list[dict[str, Any]] = []
    val: list[dict[str, Any]] = []
    for row in rows:
        key = str(row.get("id") or json.dumps(row, sort_keys=True))
        (val if is_validation(key, val_fraction) else train).append(row)
    if not val and len(train) > 1:
        val.append(train.pop())
    return train, val
