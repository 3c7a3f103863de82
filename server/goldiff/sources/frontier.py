"""Frontier sources: any OpenAI-compatible endpoint, and Anthropic's Messages API, over httpx.

OpenAI-compatible servers (OpenAI, vLLM, llama.cpp's server, ...) are asked first through
the legacy `/v1/completions` with `suffix` (a real FIM request where the endpoint supports
it); an endpoint that answers 404/400 there (OpenAI's chat models do) is asked through
`/v1/chat/completions` with a fill-in-the-middle instruction from then on. Anthropic only
has chat, so it always gets the instruction prompt.

Failures a user can fix say how (401: the key; 404: the model or base URL; quota). 429,
5xx, 529 and connection failures are retried with exponential backoff (honouring
`Retry-After`) within the request's time budget. The API key lives in the request headers
and nowhere else: it is never logged, never part of an error message, never recorded.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from goldiff.errors import ConfigError, FrontierError
from goldiff.prompts import (
    CHAT_PREFIX_CHARS,
    CHAT_SUFFIX_CHARS,
    CHAT_SYSTEM_PROMPT,
    CURSOR,
    chat_user_message,
)
from goldiff.sources.base import Completion, CompletionRequest, Deadline, finish_text
from goldiff.sources.endpoint import endpoint_root

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
# The model asked when goldiff.frontier.model is empty (documented in the setting's
# description): a fast, inexpensive model of each provider, as completion wants.
DEFAULT_MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5"}
# How a user sets the key: VS Code keeps it in its secret storage through this command;
# other editors send it as `frontier.apiKey` in the server's settings.
SET_KEY_HINT = (
    "run the command 'Goldiff: Set Frontier API Key' (other editors: send frontier.apiKey "
    "in the server settings)"
)
MAX_ATTEMPTS = 4
BACKOFF_FIRST = 0.25  # seconds; doubled on every retry, with jitter
BACKOFF_MAX = 4.0
CONNECT_TIMEOUT = 5.0

_USAGE = ("prompt_tokens", "completion_tokens")  # an OpenAI-style answer's token counts
_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504, 529}
_FENCE = re.compile(r"^```[\w+-]*\n(.*?)\n?```\s*$", re.S)


def chat_prompt(request: CompletionRequest) -> str:
    """The user message for chat models (`prompts.chat_user_message` over the request)."""
    return chat_user_message(
        prefix=request.prefix,
        suffix=request.suffix,
        path=request.path,
        language=request.language,
        snippets=[(s.path, s.text) for s in request.snippets],
        recent_edits=[(e.offset, e.removed, e.inserted) for e in request.recent_edits],
    )


def clean_chat_reply(reply: str, request: CompletionRequest) -> str:
    """Undo what chat models add around an insertion: fences, the marker, the line so far."""
    fenced = _FENCE.match(reply.strip())
    text = (fenced.group(1) if fenced else reply).replace(CURSOR, "")
    # Models often repeat the current line before continuing it.
    line_before = request.prefix[request.prefix.rfind("\n") + 1 :]
    if line_before.strip() and text.startswith(line_before):
        text = text[len(line_before) :]
    elif line_before.strip() and text.lstrip().startswith(line_before.strip()):
        text = text.lstrip()[len(line_before.strip()) :]
    return text


@dataclass(frozen=True)
class ChatReply:
    """One answer: the reply's text, the answer's JSON and its token counts."""

    text: str
    data: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None


def _finish(api: str, reply: ChatReply) -> str:
    """An OpenAI-style answer's stop reason, after the API that gave it."""
    return f"{api}:{reply.data['choices'][0].get('finish_reason') or ''}"


class _HttpSource:
    kind = "frontier"
    provider = ""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = time.sleep,
    ) -> None:
        self.base_url, self.model, headers = self._connection(base_url, model, api_key)
        self._sleep = sleep
        # Error bodies sometimes quote the key back; it must not reach a message or a log.
        self._secret = api_key or ""
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(10.0, connect=CONNECT_TIMEOUT),
            transport=transport,
        )

    def _post(
        self, path: str, body: dict[str, Any], deadline: Deadline, cancel: threading.Event
    ) -> httpx.Response:
        """POST with retries; return the first response that is not retryable."""
        delay = BACKOFF_FIRST
        last = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if cancel.is_set():
                raise FrontierError("cancelled")
            try:
                # Encoded here, ASCII-escaped: a lone surrogate from the editor becomes
                # `\ud800` in the JSON instead of a UnicodeEncodeError inside httpx.
                response = self._client.post(
                    path,
                    content=json.dumps(body).encode("ascii"),
                    headers={"Content-Type": "application/json"},
                    timeout=max(0.1, deadline.left()),
                )
            except httpx.TimeoutException as exc:
                raise FrontierError(
                    f"the frontier endpoint {self.base_url} did not answer within the time budget"
                ) from exc
            except httpx.TransportError as exc:
                last = f"cannot reach {self.base_url} ({type(exc).__name__})"
                response = None
            if response is not None:
                quota = any(w in response.text.lower() for w in ("quota", "credit balance"))
                if response.status_code not in _RETRYABLE or (response.status_code == 429 and quota):
                    return response
                last = f"HTTP {response.status_code}: {self._detail(response)}"
                retry_after = response.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = max(delay, float(retry_after))
            wait = min(delay, BACKOFF_MAX) * (0.75 + 0.5 * random.random())
            if attempt == MAX_ATTEMPTS or wait >= deadline.left():
                break
            log.info("frontier %s: %s; retrying in %.2fs", self.provider, last, wait)
            self._sleep(wait)
            delay *= 2
        raise FrontierError(f"the frontier endpoint {self.base_url} failed after {attempt} tries: {last}")

    def _connection(
        self, base_url: str | None, model: str | None, api_key: str | None
    ) -> tuple[str, str, dict[str, str]]:
        """The API root, the model asked and the headers; a ConfigError if they cannot work."""
        raise NotImplementedError

    def _detail(self, response: httpx.Response) -> str:
        try:
            data = response.json()
            err = data.get("error") if isinstance(data, dict) else None
            if isinstance(err, dict):
                detail = str(err.get("message") or err.get("type") or err)[:300]
            else:
                detail = (err if isinstance(err, str) else str(data))[:300]
        except ValueError:
            detail = response.text[:200]
        return detail.replace(self._secret, "***") if self._secret else detail

    def _reply(
        self, response: httpx.Response, read: Callable[[Any], str], usage: tuple[str, str]
    ) -> ChatReply:
        """A successful answer's `read(json)`, its JSON and its `usage` token counts.

        A failure, or an answer of the wrong shape, is a FrontierError: a proxy's HTML error
        page or a half-compatible server must not surface as a crash.
        """
        self._raise_for(response)
        try:
            data = response.json()
            tokens = data.get("usage") or {}
            return ChatReply(read(data), data, tokens.get(usage[0]), tokens.get(usage[1]))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise FrontierError(
                f"the frontier endpoint {response.request.url} answered with something that is not the "
                f"API's JSON ({type(exc).__name__}: {response.text[:80]!r}); check goldiff.frontier.baseUrl"
            ) from exc

    def _raise_for(self, response: httpx.Response) -> None:
        code = response.status_code
        if code < 400:
            return
        detail = self._detail(response)
        if code in (401, 403):
            raise FrontierError(
                f"the frontier endpoint refused the API key (HTTP {code}: {detail}). "
                f"To set a valid key, {SET_KEY_HINT}."
            )
        if code == 404:
            raise FrontierError(
                f"the frontier model {self.model!r} or endpoint {self.base_url} was not found "
                f"(HTTP 404: {detail}). Check goldiff.frontier.model and goldiff.frontier.baseUrl."
            )
        if code == 429:
            raise FrontierError(
                f"the frontier account is out of quota (HTTP 429: {detail}). "
                "Check the plan and billing of the API key, or switch to the local model."
            )
        raise FrontierError(f"the frontier endpoint answered HTTP {code}: {detail}")

    def _result(
        self, request: CompletionRequest, reply: ChatReply, deadline: Deadline, stop: str, text: str, raw: str
    ) -> Completion:
        """The completion of `text` (the reply, cleaned up), recording `raw` as the model's text."""
        final = finish_text(text, request)
        return Completion(
            candidates=[final] if final else [],
            source=self.kind,
            model=self.model or str(reply.data.get("model") or ""),
            latency_ms=deadline.elapsed_ms(),
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            stop_reason=stop,
            raw_text=raw,
        )

    def close(self) -> None:
        self._client.close()


class OpenAICompatibleSource(_HttpSource):
    """OpenAI, or any server that speaks its API (vLLM, llama.cpp's server, ...)."""

    provider = "openai"

    def __init__(self, *, api: str = "auto", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = api  # auto | completions | chat

    def _connection(
        self, base_url: str | None, model: str | None, api_key: str | None
    ) -> tuple[str, str, dict[str, str]]:
        if base_url is None and not api_key:
            raise ConfigError(
                f"the frontier needs an API key: {SET_KEY_HINT}, "
                "or point goldiff.frontier.baseUrl at an OpenAI-compatible server"
            )
        if base_url is None and not model:
            model = DEFAULT_MODELS["openai"]  # a self-hosted server may take no model name
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # "http://host:8000" means the usual OpenAI-style root, its /v1.
        return endpoint_root(base_url or OPENAI_URL), model or "", headers

    def complete(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Completion:
        cancel = cancel or threading.Event()
        deadline = Deadline(request.max_seconds)
        if self.api in ("auto", "completions"):
            response = self._post("/completions", self._completions_body(request), deadline, cancel)
            if response.status_code in (400, 404) and self.api == "auto":
                log.info(
                    "frontier: %s has no FIM completions (%s); using chat",
                    self.base_url,
                    response.status_code,
                )
                self.api = "chat"
            else:
                reply = self._reply(response, lambda d: str(d["choices"][0].get("text") or ""), _USAGE)
                stop = _finish("completions", reply)
                return self._result(request, reply, deadline, stop, reply.text, reply.text)
        chat = self.chat(CHAT_SYSTEM_PROMPT, chat_prompt(request), request.max_tokens, deadline, cancel)
        text = clean_chat_reply(chat.text, request)
        return self._result(request, chat, deadline, _finish("chat", chat), text, chat.text)

    def _completions_body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prefix[-CHAT_PREFIX_CHARS:],
            "suffix": request.suffix[:CHAT_SUFFIX_CHARS],
            "max_tokens": request.max_tokens,
            "temperature": 0,
        }
        if self.model:
            body["model"] = self.model
        if not request.stop_rule().multiline:
            body["stop"] = ["\n"]
        return body

    def chat(
        self, system: str, user: str, max_tokens: int, deadline: Deadline, cancel: threading.Event
    ) -> ChatReply:
        """One turn through `/chat/completions` (completions' fallback, edit requests)."""
        body: dict[str, Any] = {
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if self.model:
            body["model"] = self.model
        response = self._post("/chat/completions", body, deadline, cancel)
        return self._reply(response, lambda d: str(d["choices"][0]["message"].get("content") or ""), _USAGE)


class AnthropicSource(_HttpSource):
    """Anthropic's Messages API (chat only: the FIM instruction prompt)."""

    provider = "anthropic"

    def _connection(
        self, base_url: str | None, model: str | None, api_key: str | None
    ) -> tuple[str, str, dict[str, str]]:
        if not api_key:
            raise ConfigError(f"the Anthropic frontier needs an API key: {SET_KEY_HINT}")
        headers = {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}
        return (base_url or ANTHROPIC_URL).rstrip("/"), model or DEFAULT_MODELS["anthropic"], headers

    def chat(
        self, system: str, user: str, max_tokens: int, deadline: Deadline, cancel: threading.Event
    ) -> ChatReply:
        """One turn through the Messages API (every completion, edit requests)."""
        body = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": 0,
            "system": system,
            "messages": [{"role": "user", "content": user}],
        }
        path = "/messages" if self.base_url.endswith("/v1") else "/v1/messages"
        return self._reply(
            self._post(path, body, deadline, cancel),
            lambda d: "".join(b.get("text", "") for b in d.get("content", []) if b.get("type") == "text"),
            ("input_tokens", "output_tokens"),
        )

    def complete(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Completion:
        cancel = cancel or threading.Event()
        deadline = Deadline(request.max_seconds)
        chat = self.chat(CHAT_SYSTEM_PROMPT, chat_prompt(request), request.max_tokens, deadline, cancel)
        stop = f"messages:{chat.data.get('stop_reason') or ''}"
        return self._result(request, chat, deadline, stop, clean_chat_reply(chat.text, request), chat.text)
