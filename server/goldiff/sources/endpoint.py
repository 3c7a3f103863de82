"""The local model served once for a team: any OpenAI-compatible completions endpoint.

With `goldiff.local.endpoint` set, local mode asks a shared server (`python -m
llama_cpp.server`, `llama-server`, vLLM, ...) instead of loading the GGUF in-process. The
questions are the ones the in-process source asks: a fill-in-the-middle prompt built from
the served model's own FIM tokens (or, for a model without them, the prefix alone), sent
to `/v1/completions` as text with no `suffix` (llama.cpp's servers would otherwise wrap it
in token 0, see notes/model-pipeline.md). The tokens are found on the server: each known
family's control tokens are tokenized there (`/extras/tokenize` on llama_cpp.server,
`/tokenize` on llama-server and vLLM), and a family whose every token is one token there is
the model's; a server without a tokenize route is matched by the model's name. The answer
is streamed, so the shared `StopRule` ends it as soon as the line or block is done (the
stream is closed, which stops the server's generation too), as does the cancel event or the
time budget. Suggestions are recorded with source `local` and the served model's name, so
outcomes, exports and evaluation treat them as the local model's.

A literal control-token text in the user's file (this module's docstring has some) must not
become a control token on the server, which parses them in prompt text: such text gets a
zero-width space after its first character before it is sent.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import httpx

from goldiff.errors import SourceError
from goldiff.prompts import BOS, PREFIX, SUFFIX, TEMPLATES
from goldiff.sources.base import Completion, CompletionRequest, Deadline, finish_text, prefix_excerpt
from goldiff.sources.fim import VocabInfo, resolve_template

log = logging.getLogger(__name__)

PREFIX_CHARS = 4_000  # of the request's prefix sent (~1k tokens of code); halved on a context error
SUFFIX_CHARS = 1_000
PREFIX_STEP = 512  # the prefix excerpt starts on a step, so the server's prompt cache stays useful
CONNECT_TIMEOUT = 3.0
_ZWSP = "\u200b"


@dataclass(frozen=True)
class EndpointPrompt:
    """How this endpoint's model is asked: a FIM family's token texts, or prefix-only."""

    template: str  # a fim.TEMPLATES name, or "prefix"
    layout: tuple[str, ...] = ()  # control-token texts and the PREFIX/SUFFIX slots
    control: tuple[str, ...] = ()  # texts to keep out of user text

    def text(self, prefix: str, suffix: str) -> str:
        if not self.layout:
            return self._plain(prefix)
        # No BOS: the server adds the model's BOS itself when the model wants one.
        slots = {PREFIX: self._plain(prefix), SUFFIX: self._plain(suffix), BOS: ""}
        return "".join(slots.get(part, part) for part in self.layout)

    def _plain(self, text: str) -> str:
        for token in self.control:
            text = text.replace(token, token[0] + _ZWSP + token[1:])
        return text


def endpoint_root(url: str) -> str:
    """The OpenAI-style API root of a user's URL (`http://host:8000` means `.../v1`)."""
    url = url.strip().rstrip("/")
    if not re.search(r"/v\d+$", url) and httpx.URL(url).path in ("", "/"):
        url += "/v1"
    return url


class EndpointSource:
    """Local mode's completions from a shared OpenAI-compatible server."""

    kind = "local"

    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise SourceError(
                f"goldiff.local.endpoint {url!r} is not an http(s) URL; give the server's base URL, "
                "e.g. http://models.example:8000/v1"
            )
        self.base_url = endpoint_root(url)
        self.model = ""  # the served model's name, known after the first request
        self.prompt: EndpointPrompt | None = None
        self._served: str | None = None  # the id to send as `model`
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, connect=CONNECT_TIMEOUT), transport=transport)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what is served

    def _unreachable(self, exc: Exception) -> SourceError:
        return SourceError(
            f"the team's model server {self.base_url} cannot be reached ({type(exc).__name__}). "
            "Check goldiff.local.endpoint, or clear it to load the model on this machine."
        )

    def resolve(self) -> EndpointPrompt:
        """Ask the server what it serves and how its model takes a FIM prompt (once)."""
        with self._lock:
            if self.prompt is not None:
                return self.prompt
            try:
                response = self._client.get(self.base_url + "/models")
                response.raise_for_status()
                models = [str(m["id"]) for m in response.json().get("data", [])]
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise SourceError(
                    f"{self.base_url}/models did not answer with a model list: is goldiff.local.endpoint "
                    "an OpenAI-compatible server?"
                ) from exc
            if not models:
                raise SourceError(f"the model server {self.base_url} serves no model")
            self._served = models[0]
            name = PurePosixPath(self._served).name
            self.model = name.removesuffix(".gguf")
            self.prompt = self._find_prompt(name)
            log.info("endpoint %s serves %s; prompt %s", self.base_url, self.model, self.prompt.template)
            return self.prompt

    def _find_prompt(self, name: str) -> EndpointPrompt:
        no_route: list[str] = []  # the texts asked when the server had no tokenize route

        @functools.cache
        def special_id(text: str) -> int | None:
            ids = None if no_route else self._tokenize(text)
            if ids is None:
                no_route.append(text)
            return ids[0] if ids is not None and len(ids) == 1 else None

        try:  # with no fim_ids, only a family of TEMPLATES can answer
            chosen = resolve_template(VocabInfo(special_id=special_id, name=name)).template
            template = next((t for t in TEMPLATES if t.name == chosen), None)
        except SourceError:
            template = None
        if template is None and no_route:
            # No tokenize route: trust a family the model's name announces.
            template = next((t for t in TEMPLATES if any(h in name.lower() for h in t.hints)), None)
        if template is None:
            return EndpointPrompt("prefix")
        control = tuple({*template.control_tokens, *template.stop} - {""})
        return EndpointPrompt(template.name, template.layout, control)

    def _tokenize(self, text: str) -> list[int] | None:
        """Token ids of `text` on the server with special tokens parsed; None: no such route."""
        root = re.sub(r"/v\d+$", "", self.base_url)
        attempts = (
            (f"{root}/extras/tokenize", {"input": text}),  # llama_cpp.server
            # llama-server reads `content`, vLLM `prompt`; each ignores the other's fields.
            (
                f"{root}/tokenize",
                {"content": text, "prompt": text, "add_special": False, "model": self._served},
            ),
        )
        for url, body in attempts:
            try:
                response = self._client.post(url, json=body)
            except httpx.HTTPError:
                return None
            if response.status_code == 200:
                with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                    tokens = response.json().get("tokens")
                    return [int(t["id"] if isinstance(t, dict) else t) for t in tokens]
        return None

    # ------------------------------------------------------------------ completing

    def complete(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Completion:
        cancel = cancel or threading.Event()
        deadline = Deadline(request.max_seconds)
        prompt = self.resolve()
        rule = request.stop_rule()
        budget = PREFIX_CHARS
        while True:
            body: dict[str, Any] = {
                "prompt": prompt.text(
                    prefix_excerpt(request.prefix, budget, PREFIX_STEP), request.suffix[:SUFFIX_CHARS]
                ),
                "max_tokens": request.max_tokens,
                "temperature": 0,
                "top_k": 1,
                "repeat_penalty": 1.0,
                "stream": True,
            }
            if self._served:
                body["model"] = self._served
            try:
                text, pieces, reason = self._stream(body, rule, cancel, deadline)
                break
            except _ContextTooLong:
                if budget <= 256:
                    raise SourceError(
                        f"the model server {self.base_url} refuses even a short prompt: "
                        "its context is too small"
                    ) from None
                budget //= 2  # the server's context is smaller than ours: ask with less
        final = "" if reason == "cancelled" else finish_text(text, request, rule)
        return Completion(
            candidates=[final] if final else [],
            source=self.kind,
            model=self.model,
            latency_ms=deadline.elapsed_ms(),
            completion_tokens=pieces,
            stop_reason=reason,
            raw_text=text,
        )

    def _stream(
        self, body: dict[str, Any], rule: Any, cancel: threading.Event, deadline: Deadline
    ) -> tuple[str, int, str]:
        text, pieces, reason = "", 0, "max_tokens"
        try:
            with self._client.stream(
                "POST", self.base_url + "/completions", json=body, timeout=max(0.1, deadline.left())
            ) as response:
                if response.status_code != 200:
                    detail = response.read().decode("utf-8", "replace")[:300]
                    if response.status_code == 400 and "context" in detail.lower():
                        raise _ContextTooLong
                    raise SourceError(
                        f"the model server {self.base_url} answered HTTP {response.status_code}: {detail}"
                    )
                for line in response.iter_lines():
                    if cancel.is_set():
                        return text, pieces, "cancelled"
                    if deadline.expired:
                        return text, pieces, "max_time"
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choice = json.loads(data)["choices"][0]
                    piece = str(choice.get("text") or "")
                    if piece:
                        pieces += 1
                        text += piece
                        cut = rule.cut(text)
                        if cut is not None:
                            # Closing the stream here stops the server's generation as well.
                            return text[:cut], pieces, "block" if rule.multiline else "line"
                    finished = choice.get("finish_reason")
                    if finished:
                        reason = "max_tokens" if finished == "length" else "eos"
        except httpx.TimeoutException:
            return text, pieces, "max_time"
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SourceError(
                f"the model server {self.base_url} streamed something that is not the completions API"
            ) from exc
        return text, pieces, reason

    def close(self) -> None:
        self._client.close()


class _ContextTooLong(Exception): ...
