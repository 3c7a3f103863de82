"""Edit sources: a model rewrites one region of a file as an instruction asks.

Every source gets the same prompt, `goldiff.prompts.format_edit_prompt` (editable-region
and cursor markers, recent edits as diffs, the instruction), so a model distilled from
the `edits` export answers edit requests with no glue: the answer is the new region
followed by the region's end marker (`parse_edit_completion`). The frontier gets the
prompt as a chat message (OpenAI-compatible `/chat/completions`, Anthropic `/messages`),
a local GGUF as a raw completion through llama.cpp. The deterministic test source
(`test:` model specs) answers from an `edits` list in its rules:
`{"edits": [{"instruction": "docstring", "text": "..."}]}` — the first entry whose
`instruction` occurs in the request's instruction wins.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from goldiff.errors import SourceError
from goldiff.prompts import (
    EDIT_REGION_END,
    EDIT_SYSTEM_PROMPT,
    edit_context,
    format_edit_prompt,
    parse_edit_completion,
)
from goldiff.protocol import clean_text
from goldiff.sources.base import Deadline
from goldiff.sources.deterministic import SPEC_PREFIX, read_spec

if TYPE_CHECKING:
    from goldiff.settings import Settings
    from goldiff.sources.completion import CompletionService

EDIT_MAX_TOKENS = 1024  # a rewritten region is longer than a completion
EDIT_MAX_SECONDS = 60.0


@dataclass
class EditRequest:
    """What an edit source is asked: one region, its context and the instruction."""

    path: str
    region: str
    instruction: str
    language: str = ""
    context_before: str = ""
    context_after: str = ""
    recent_edits: list[str] = field(default_factory=list)
    cursor: int | None = None

    def stored_context(self) -> dict[str, Any]:
        """The context a proposal keeps, from which the `edits` export rebuilds `prompt()`."""
        return {
            "context_before": self.context_before,
            "context_after": self.context_after,
            "recent_edits": self.recent_edits,
            "cursor": self.cursor,
        }

    def prompt(self) -> str:
        # A lone surrogate (a client can send one) has no UTF-8 form: llama.cpp and HTTP
        # bodies need one, so it becomes U+FFFD, as the store records it.
        return clean_text(
            format_edit_prompt(
                path=self.path,
                region=self.region,
                cursor=self.cursor,
                context_before=self.context_before,
                context_after=self.context_after,
                recent_edits=self.recent_edits,
                instruction=self.instruction,
                language=self.language or None,
            )
        )


@dataclass
class Rewrite:
    text: str
    source: str
    model: str
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class EditSource(Protocol):
    kind: str
    model: str

    def rewrite(self, request: EditRequest, cancel: threading.Event) -> Rewrite: ...


def build_request(
    text: str, start: int, end: int, *, path: str, language: str, instruction: str, recent_edits: list[str]
) -> EditRequest:
    """The request for region [start, end) of `text`, with whole lines of context around it.

    The context is as wide as the `edits` export's (`EDIT_CONTEXT_LINES`), so a model
    trained on those rows sees requests shaped like its training prompts.
    """
    head, tail = edit_context(text, start, end)
    return EditRequest(
        path=path,
        region=text[start:end],
        instruction=instruction,
        language=language,
        context_before=text[head:start],
        context_after=text[end:tail],
        recent_edits=recent_edits,
    )


def clean_reply(reply: str) -> str:
    """The region from a model's answer: up to the end marker, without a wrapping code fence."""
    parsed = parse_edit_completion(reply)
    text = parsed if parsed is not None else reply
    fence = re.fullmatch(r"\s*```[^\n]*\n(.*?)\n?```\s*", text, re.S)
    if fence:
        text = fence.group(1) + "\n"
    return text


class DeterministicEditSource:
    """Rules instead of a model, for tests: see the module docstring."""

    def __init__(self, spec: str, *, kind: str) -> None:
        data = read_spec(spec)
        self.edits = [(str(e["instruction"]), str(e["text"])) for e in data.get("edits", [])]
        self.kind = kind
        self.model = str(data.get("model", "deterministic"))

    def rewrite(self, request: EditRequest, cancel: threading.Event) -> Rewrite:
        started = time.perf_counter()
        prompt = request.prompt()  # built as for a real model, so the format is exercised
        for key, text in self.edits:
            if key in request.instruction:
                return Rewrite(
                    text, self.kind, self.model, (time.perf_counter() - started) * 1000, len(prompt)
                )
        raise SourceError(f"the test source has no edit rule for the instruction {request.instruction!r}")


class ChatEditSource:
    """A frontier source (OpenAI-compatible or Anthropic) asked through its chat API."""

    def __init__(self, source: Any) -> None:
        self._source = source  # a goldiff.sources.frontier source: its client, retries, errors
        self.kind = "frontier"
        self.model = str(source.model or "")

    def rewrite(self, request: EditRequest, cancel: threading.Event) -> Rewrite:
        deadline = Deadline(EDIT_MAX_SECONDS)
        chat = self._source.chat(EDIT_SYSTEM_PROMPT, request.prompt(), EDIT_MAX_TOKENS, deadline, cancel)
        return Rewrite(
            clean_reply(chat.text),
            self.kind,
            self.model,
            deadline.elapsed_ms(),
            chat.prompt_tokens,
            chat.completion_tokens,
        )


class LocalEditSource:
    """A local GGUF through llama.cpp: the edit prompt as a raw completion, greedy."""

    def __init__(self, source: Any) -> None:
        self._source = source  # the local engine: a WorkerSource (or a LocalSource in-process)
        self.kind = "local"
        self.model = str(source.model)
        self._lock = threading.Lock()  # one llama context: one generation at a time

    def rewrite(self, request: EditRequest, cancel: threading.Event) -> Rewrite:
        deadline = Deadline(EDIT_MAX_SECONDS)
        prompt = request.prompt()
        with self._lock:
            out = self._source.raw_complete(prompt, EDIT_MAX_TOKENS, [EDIT_REGION_END])
        return Rewrite(
            clean_reply(str(out["text"]) + EDIT_REGION_END),
            self.kind,
            self.model,
            deadline.elapsed_ms(),
            out.get("prompt_tokens"),
            out.get("completion_tokens"),
        )


def edit_source(kind: str, settings: Settings, completion: CompletionService) -> EditSource:
    """The edit source for `kind` (frontier | local) under the server's current settings."""
    spec = settings.frontier.model if kind == "frontier" else settings.local.model
    if spec is not None and spec.startswith(SPEC_PREFIX):
        return DeterministicEditSource(spec, kind=kind)
    if kind == "frontier":
        return ChatEditSource(completion.frontier_source())
    return LocalEditSource(completion.local_source())
