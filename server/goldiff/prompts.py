"""Every prompt Goldiff sends or trains on, defined once.

A model is trained on exported rows and served by a source; if the two disagree by one
byte (another system prompt, another cursor marker, another excerpt limit) the model is
served a prompt it never saw. So the FIM tokens and FIM prompt text, the chat system
prompt and cursor marker, the edit prompt and its markers live here, and the sources, the
export and distillation all import them (tests/test_prompt_identity.py checks each export
format against the source that serves it, byte for byte).

This module is the lowest layer: it imports nothing from Goldiff.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# ---------------------------------------------------------------------------- FIM

END_OF_TEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_PAD = "<|fim_pad|>"
#: The control tokens of Goldiff's own tokenizer, in id order (they take ids 0..4).
SPECIAL_TOKENS: tuple[str, ...] = (END_OF_TEXT, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FIM_PAD)


def fim_prompt(prefix: str, suffix: str) -> str:
    """The fill-in-the-middle prompt as text (PSM order, Qwen/StarCoder token names).

    The local source builds the same sequence as token ids (`sources/fim.py`), with the
    user's text tokenized as plain text so it can never become a control token.
    """
    return f"{FIM_PREFIX}{prefix}{FIM_SUFFIX}{suffix}{FIM_MIDDLE}"


# Other families' FIM layouts, for serving a third-party GGUF (sources/fim.py resolves
# them against a model's vocabulary). The slots mark where the user's text goes.
PREFIX = "{prefix}"
SUFFIX = "{suffix}"
BOS = "{bos}"


@dataclass(frozen=True)
class FimTemplate:
    """A family's FIM layout: control-token texts and the prefix/suffix slots, in order."""

    name: str
    layout: tuple[str, ...]
    stop: tuple[str, ...] = ()  # control tokens that end the middle, besides end-of-generation
    hints: tuple[str, ...] = ()  # lower-case pieces of a model's name that mean this family

    @property
    def control_tokens(self) -> tuple[str, ...]:
        return tuple(part for part in self.layout if part not in (PREFIX, SUFFIX, BOS))


_QWEN_LAYOUT = (FIM_PREFIX, PREFIX, FIM_SUFFIX, SUFFIX, FIM_MIDDLE)

TEMPLATES: tuple[FimTemplate, ...] = (
    # The project's own model uses Qwen's token names (distill/tokenizer.py).
    FimTemplate("goldiff", _QWEN_LAYOUT, stop=(END_OF_TEXT, FIM_PAD), hints=("goldiff",)),
    FimTemplate(
        "qwen2.5-coder",
        _QWEN_LAYOUT,
        stop=(END_OF_TEXT, FIM_PAD, "<|file_sep|>", "<|repo_name|>", "<|im_end|>"),
        hints=("qwen",),
    ),
    FimTemplate(
        "starcoder2",
        ("<fim_prefix>", PREFIX, "<fim_suffix>", SUFFIX, "<fim_middle>"),
        stop=(END_OF_TEXT, "<file_sep>", "<fim_pad>"),
        hints=("starcoder",),
    ),
    FimTemplate(
        "codellama",
        (BOS, "▁<PRE>", PREFIX, "▁<SUF>", SUFFIX, "▁<MID>"),
        stop=("▁<EOT>",),
        hints=("codellama", "code llama", "code-llama"),
    ),
    FimTemplate(
        "deepseek-coder",
        (BOS, "<｜fim▁begin｜>", PREFIX, "<｜fim▁hole｜>", SUFFIX, "<｜fim▁end｜>"),
        stop=("<|EOT|>",),
        hints=("deepseek",),
    ),
    # Codestral puts the suffix first (SPM) and has no middle token: the prefix runs
    # straight into the generated middle.
    FimTemplate("codestral", (BOS, "[SUFFIX]", SUFFIX, "[PREFIX]", PREFIX), hints=("codestral",)),
)


# ---------------------------------------------------------------------------- chat completion

CURSOR = "<|cursor|>"
CHAT_PREFIX_CHARS = 6_000  # of a request's prefix a chat prompt carries
CHAT_SUFFIX_CHARS = 1_500
CHAT_SYSTEM_PROMPT = (
    "You are a code completion engine inside an editor. You are shown a file with the "
    f"cursor marked {CURSOR}. Reply with only the text to insert at the cursor: no "
    "explanation, no code fences, nothing that is already before or after the cursor. "
    "Finish the current line, or the current block when the cursor is on an empty line. "
    "Reply with nothing if no insertion makes sense."
)


def chat_user_message(
    *,
    prefix: str,
    suffix: str,
    path: str | None = None,
    language: str | None = None,
    snippets: Sequence[tuple[str, str]] = (),
    recent_edits: Sequence[tuple[int, int, str]] = (),
) -> str:
    """The user message for chat models: context first, then the file with the cursor.

    `snippets` are (path, text) of related code, `recent_edits` (offset, removed, inserted).
    """
    parts = [f"Related code from {snippet_path}:\n{text}\n" for snippet_path, text in list(snippets)[:3]]
    if recent_edits:
        edits = "\n".join(
            f"- at {offset}: removed {removed} chars, inserted {inserted!r}"
            for offset, removed, inserted in list(recent_edits)[-5:]
        )
        parts.append(f"The developer's most recent edits in this file:\n{edits}\n")
    where = path or "the file"
    lang = f" ({language})" if language else ""
    parts.append(f"{where}{lang}:\n{prefix[-CHAT_PREFIX_CHARS:]}{CURSOR}{suffix[:CHAT_SUFFIX_CHARS]}")
    return "\n".join(parts)


# ---------------------------------------------------------------------------- edits

# The edit prompt's markers. Plain text, not special tokens: any tokenizer can carry them
# and a model learns them from the export itself.
EDIT_REGION_START = "<|editable_region_start|>"
EDIT_REGION_END = "<|editable_region_end|>"
EDIT_CURSOR = "<|user_cursor_is_here|>"
# Lines of the document kept above and below an episode's editable region.
EDIT_CONTEXT_LINES = 12
# Recent edits shown before an edit prompt, newest last.
EDIT_HISTORY = 5


def edit_context(text: str, start: int, end: int) -> tuple[int, int]:
    """Where the `EDIT_CONTEXT_LINES` whole lines above [start, end) of `text` begin and
    the ones below it end: the context an edit prompt shows around its region."""
    top, bottom = start, end
    for _ in range(EDIT_CONTEXT_LINES):
        top = text.rfind("\n", 0, max(top - 1, 0)) + 1
        bottom = text.find("\n", bottom) + 1 or len(text)  # no newline below: the text's end
    return top, bottom


EDIT_SYSTEM_PROMPT = (
    "You rewrite one region of a source file as the developer would, following their "
    "instruction when there is one. The region is marked in the excerpt. Answer with the new "
    f"region's text only, then {EDIT_REGION_END}. No explanations, no code fences."
)


def edit_history(changes: Iterable[tuple[str, str]], path: str) -> list[str]:
    """Recent edits as the edit prompt shows them: one small unified diff per change.

    Shared by the `edits` export and the server's edit requests, so a model trained on
    the export sees at serving time exactly the history it was trained with.
    """
    diffs = []
    for old, new in changes:
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=1
            )
        )
        if diff:
            diffs.append(diff if diff.endswith("\n") else diff + "\n")
    return diffs


def format_edit_prompt(
    *,
    path: str,
    region: str,
    cursor: int | None = None,
    context_before: str = "",
    context_after: str = "",
    recent_edits: Sequence[str] = (),
    instruction: str | None = None,
    language: str | None = None,
) -> str:
    """The edit model's prompt: recent edits as diffs, then the excerpt with markers.

    `region` is the editable region's current text and `cursor` an offset into it (None:
    no cursor inside the region). The model answers with the rewritten region followed by
    `EDIT_REGION_END` (see `edit_completion` / `parse_edit_completion`).
    """
    parts = [f"### File: {path}" + (f" ({language})" if language else "")]
    if instruction:
        parts.append(f"### Instruction\n{instruction.rstrip()}")
    if recent_edits:
        parts.append("### Recent edits\n" + "\n".join(d.rstrip("\n") for d in recent_edits))
    if cursor is not None:
        cursor = max(0, min(cursor, len(region)))
        region = region[:cursor] + EDIT_CURSOR + region[cursor:]
    excerpt = f"{context_before}{EDIT_REGION_START}{region}{EDIT_REGION_END}{context_after}"
    parts.append(f"### Excerpt\n{excerpt}")
    parts.append(f"### Rewrite\n{EDIT_REGION_START}")
    return "\n".join(parts)


def edit_completion(after: str) -> str:
    """What an edit model is trained to answer: the new region, then the end marker."""
    return after + EDIT_REGION_END


def parse_edit_completion(text: str) -> str | None:
    """The rewritten region from an edit model's answer; None when it never closed it."""
    region, closed, _ = text.partition(EDIT_REGION_END)
    return region.replace(EDIT_CURSOR, "") if closed else None
