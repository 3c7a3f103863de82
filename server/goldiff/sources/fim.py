"""Fill-in-the-middle prompt templates, and choosing one from a GGUF's own metadata.

A FIM model is asked for the middle of a document by a fixed arrangement of control
tokens around the prefix and suffix; each model family has its own. The prompt is built
as token ids, never as text: the user's prefix and suffix are tokenized with special
tokens disabled, so a file that literally contains `<|fim_suffix|>` cannot inject a
control token (llama-cpp-python 0.3.36's `create_completion(suffix=...)` is no help: it
sends token 0 three times; see notes/model-pipeline.md).

The template is chosen from the model itself: a family named in `general.name` or the
file name comes first, then any family whose control tokens all exist in the vocabulary,
then the FIM token ids llama.cpp read from `tokenizer.ggml.fim_*_token_id`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from goldiff.errors import ModelLoadError

# The slots and every family's template live with the other prompts (prompts.py).
from goldiff.prompts import BOS, PREFIX, SUFFIX, TEMPLATES, FimTemplate


@dataclass(frozen=True)
class FimPrompt:
    """A template resolved against one vocabulary: token ids in place of token texts."""

    template: str
    layout: tuple[int | str, ...]  # token ids, and the PREFIX / SUFFIX slots
    stop_ids: frozenset[int]

    def build(self, prefix_ids: Sequence[int], suffix_ids: Sequence[int]) -> list[int]:
        # Every completion builds one: the ids are copied in whole, not one by one.
        out: list[int] = []
        for part in self.layout:
            if isinstance(part, int):
                out.append(part)
            else:
                out.extend(prefix_ids if part == PREFIX else suffix_ids)
        return out


@dataclass(frozen=True)
class VocabInfo:
    """What template resolution needs to know about a model's vocabulary."""

    special_id: Callable[[str], int | None]  # the id of a control token spelled so, if any
    name: str = ""  # general.name and the file name: the family, when it says so
    arch: str = ""  # general.architecture: a weaker hint (our own model is a qwen2 too)
    bos_id: int | None = None
    fim_ids: tuple[int, int, int] | None = None  # llama.cpp's FIM prefix/suffix/middle ids
    eog_ids: frozenset[int] = frozenset()  # end-of-generation ids (eos, eot, ...)


def _ordered(name: str, arch: str) -> list[FimTemplate]:
    by_name = [t for t in TEMPLATES if any(h in name.lower() for h in t.hints)]
    by_arch = [t for t in TEMPLATES if t not in by_name and any(h in arch.lower() for h in t.hints)]
    rest = [t for t in TEMPLATES if t not in by_name and t not in by_arch]
    # Unhinted, the project's own template (the same tokens as Qwen's) goes last so that
    # a Qwen-style model is reported as the family a user recognises.
    return by_name + by_arch + sorted(rest, key=lambda t: t.name == "goldiff")


def resolve_template(vocab: VocabInfo) -> FimPrompt:
    """The FIM prompt layout for a vocabulary, or `ModelLoadError` if it cannot do FIM."""
    for template in _ordered(vocab.name, vocab.arch):
        ids: dict[str, int] = {}
        for token in template.control_tokens:
            found = vocab.special_id(token)
            if found is None:
                break
            ids[token] = found
        else:
            bos: list[int | str] = [vocab.bos_id] if vocab.bos_id is not None and vocab.bos_id >= 0 else []
            slots: dict[str, list[int | str]] = {PREFIX: [PREFIX], SUFFIX: [SUFFIX], BOS: bos}
            layout = [x for part in template.layout for x in (slots[part] if part in slots else [ids[part]])]
            stops = {i for t in template.stop if (i := vocab.special_id(t)) is not None}
            return FimPrompt(template.name, tuple(layout), frozenset(stops | vocab.eog_ids))
    if vocab.fim_ids is not None and min(vocab.fim_ids) >= 0:
        pre, suf, mid = vocab.fim_ids
        return FimPrompt("gguf", (pre, PREFIX, suf, SUFFIX, mid), vocab.eog_ids)
    raise ModelLoadError(
        f"the model {vocab.name or ''} has no fill-in-the-middle tokens Goldiff knows "
        f"({', '.join(t.name for t in TEMPLATES)} or tokenizer.ggml.fim_*_token_id); "
        "use a FIM code model (e.g. Qwen2.5-Coder, StarCoder2, DeepSeek-Coder)"
    )
