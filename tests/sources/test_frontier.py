"""Frontier sources over real HTTP on loopback.

OpenAI-compatible: against llama-cpp-python's own server (`python -m llama_cpp.server`)
serving the tiny GGUF, and against a scripted loopback server for 401/404/429/5xx.
Anthropic: no Anthropic-compatible server can be installed here, so its test replays a
recorded Messages API response through `httpx.MockTransport` (the request our source
sends is checked field by field against Anthropic's documented shape).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from goldiff.errors import ConfigError, FrontierError
from goldiff.sources.base import CompletionRequest
from goldiff.sources.frontier import (
    CURSOR,
    DEFAULT_MODELS,
    AnthropicSource,
    OpenAICompatibleSource,
    clean_chat_reply,
)

KEY = "sk-test-0123456789abcdef-never-logged"
# A generous budget: the machine running the tests may be busy; timing is not under test.
REQUEST = CompletionRequest(
    prefix="def add(a, b):\n    return ", suffix="\n", language="python", path="m.py", max_seconds=120
)


def no_sleep(seconds: float) -> None:
    pass


# ---------------------------------------------------------------------- llama.cpp's server


def test_openai_completions_against_llama_cpp_server(openai_server: str) -> None:
    source = OpenAICompatibleSource(base_url=openai_server, model="tiny")
    completion = source.complete(REQUEST)
    assert source.api == "auto"  # the FIM completions endpoint answered
    assert completion.source == "frontier" and completion.model == "tiny"
    assert completion.prompt_tokens and completion.prompt_tokens > 0
    assert completion.completion_tokens and completion.completion_tokens > 0
    assert completion.stop_reason.startswith("completions:")
    assert "\n" not in completion.text  # line mode: the stop rule applies to the frontier too


def test_openai_chat_against_llama_cpp_server(openai_server: str) -> None:
    source = OpenAICompatibleSource(base_url=openai_server.removesuffix("/v1"), api="chat")
    assert source.base_url == openai_server  # "/v1" added to a bare host
    completion = source.complete(REQUEST)
    assert completion.stop_reason.startswith("chat:")
    assert completion.prompt_tokens and completion.prompt_tokens > 20  # the system prompt too


# ---------------------------------------------------------------------- scripted loopback server


class Script:
    """Answers each POST with the next (status, body, headers); records what it was sent."""

    def __init__(self, *answers: tuple[int, dict[str, Any], dict[str, str]]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, dict[str, Any], dict[str, str]]] = []


@contextlib.contextmanager
def scripted(script: Script) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            script.seen.append((self.path, body, {k.lower(): v for k, v in self.headers.items()}))
            status, payload, headers = script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def ok_completion(text: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {
        "choices": [{"text": text, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3},
    }
    return 200, body, {}


def error(status: int, message: str, kind: str = "error") -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"error": {"message": message, "type": kind}}, {}


def test_401_says_to_set_the_key_and_never_shows_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = Script(error(401, f"Incorrect API key provided: {KEY}"))  # some servers echo it
    with scripted(script) as url:
        source = OpenAICompatibleSource(base_url=url, model="m", api_key=KEY, sleep=no_sleep)
        with pytest.raises(FrontierError, match="API key") as info:
            source.complete(REQUEST)
    assert KEY not in str(info.value) and KEY not in caplog.text
    assert script.seen[0][2]["authorization"] == f"Bearer {KEY}"  # it was sent, only in the header
    assert len(script.seen) == 1  # not retried


def test_404_on_both_apis_names_the_model() -> None:
    script = Script(error(404, "The model `nope` does not exist"))
    with scripted(script) as url:
        source = OpenAICompatibleSource(base_url=url, model="nope", sleep=no_sleep)
        with pytest.raises(FrontierError, match=r"'nope'.*not found.*goldiff.frontier.model"):
            source.complete(REQUEST)
    assert [path for path, _, _ in script.seen] == ["/v1/completions", "/v1/chat/completions"]


def test_a_chat_only_model_falls_back_to_chat_once() -> None:
    chat_ok = (200, {"choices": [{"message": {"content": "```python\na + b\n```"}}], "usage": {}}, {})
    script = Script(
        error(404, "This is a chat model and not supported in the v1/completions endpoint"), chat_ok
    )
    with scripted(script) as url:
        source = OpenAICompatibleSource(base_url=url, model="gpt-x", api_key=KEY)
        assert source.complete(REQUEST).text == "a + b"
        completion = source.complete(REQUEST)
    # The suggestion is the insertion; the record keeps the reply as the model wrote it.
    assert (completion.text, completion.raw_text) == ("a + b", "```python\na + b\n```")
    assert [path for path, _, _ in script.seen] == [
        "/v1/completions",
        "/v1/chat/completions",
        "/v1/chat/completions",
    ]
    chat = script.seen[1][1]
    assert chat["model"] == "gpt-x" and chat["temperature"] == 0
    assert f"return {CURSOR}\n" in chat["messages"][1]["content"]


def test_429_and_5xx_are_retried_with_backoff() -> None:
    waits: list[float] = []
    script = Script(
        (429, {"error": {"message": "Rate limit reached"}}, {"retry-after": "0.5"}),
        error(503, "overloaded"),
        ok_completion("a + b"),
    )
    with scripted(script) as url:
        source = OpenAICompatibleSource(base_url=url, model="m", sleep=waits.append)
        completion = source.complete(REQUEST)
    assert completion.text == "a + b" and completion.prompt_tokens == 11
    assert len(script.seen) == 3
    assert len(waits) == 2 and waits[0] >= 0.5 * 0.75  # Retry-After honoured
    assert waits[1] > waits[0]  # and backoff grows


def test_persistent_5xx_gives_up_with_the_reason() -> None:
    script = Script(error(500, "internal error"))
    with scripted(script) as url:
        source = OpenAICompatibleSource(base_url=url, model="m", sleep=no_sleep)
        with pytest.raises(FrontierError, match=r"failed after 4 tries: HTTP 500: internal error"):
            source.complete(REQUEST)
    assert len(script.seen) == 4


def test_quota_is_not_retried_and_says_so() -> None:
    script = Script(error(429, "You exceeded your current quota", "insufficient_quota"))
    with scripted(script) as url:
        source = OpenAICompatibleSource(base_url=url, model="m", sleep=no_sleep)
        with pytest.raises(FrontierError, match="out of quota"):
            source.complete(REQUEST)
    assert len(script.seen) == 1


def test_unreachable_endpoint_is_a_clear_error() -> None:
    from tests.sources.conftest import free_port

    source = OpenAICompatibleSource(base_url=f"http://127.0.0.1:{free_port()}/v1", sleep=no_sleep)
    with pytest.raises(FrontierError, match="cannot reach"):
        source.complete(REQUEST)


def test_public_endpoints_need_a_key_and_default_the_model() -> None:
    with pytest.raises(ConfigError, match=r"API key.*'Goldiff: Set Frontier API Key'"):
        OpenAICompatibleSource(model="gpt-x")
    with pytest.raises(ConfigError, match=r"'Goldiff: Set Frontier API Key'"):
        AnthropicSource(model="claude")
    # An empty goldiff.frontier.model means the provider's documented default.
    assert OpenAICompatibleSource(api_key=KEY).model == DEFAULT_MODELS["openai"]
    assert AnthropicSource(api_key=KEY).model == DEFAULT_MODELS["anthropic"]
    # A self-hosted OpenAI-compatible server is asked without a model name.
    assert OpenAICompatibleSource(base_url="http://127.0.0.1:1/v1").model == ""


def test_default_models_are_the_ones_the_setting_documents() -> None:
    manifest = json.loads((Path(__file__).resolve().parents[2] / "extension" / "package.json").read_text())
    described = manifest["contributes"]["configuration"]["properties"]["goldiff.frontier.model"]
    for model in DEFAULT_MODELS.values():
        assert f"`{model}`" in described["markdownDescription"]


# ---------------------------------------------------------------------- Anthropic (recorded)

# A Messages API response as Anthropic's API returns it (recorded shape, ids shortened).
RECORDED_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "    return a + b"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 112, "output_tokens": 9},
}


def test_anthropic_messages_from_a_recorded_response() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=RECORDED_MESSAGE)

    source = AnthropicSource(model="claude-sonnet-4-5", api_key=KEY, transport=httpx.MockTransport(handler))
    completion = source.complete(REQUEST)
    # The model repeated the line's indentation before the cursor; only the insertion is kept.
    assert completion.text == "a + b"
    assert completion.raw_text == RECORDED_MESSAGE["content"][0]["text"]
    assert (completion.prompt_tokens, completion.completion_tokens) == (112, 9)
    assert completion.stop_reason == "messages:end_turn"
    request = sent[0]
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    body = json.loads(request.content)
    assert body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == REQUEST.max_tokens
    assert CURSOR in body["messages"][0]["content"] and "cursor" in body["system"]


def test_anthropic_errors_are_classified() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
        )

    source = AnthropicSource(model="claude", api_key=KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(FrontierError, match=r"invalid x-api-key.*'Goldiff: Set Frontier API Key'") as info:
        source.complete(REQUEST)
    assert KEY not in str(info.value)


def test_clean_chat_reply() -> None:
    request = CompletionRequest(prefix="x = compute(", suffix=")\n")
    assert clean_chat_reply("x = compute(a, b", request) == "a, b"
    assert clean_chat_reply("```\na, b\n```", request) == "a, b"
    assert clean_chat_reply(f"a, b{CURSOR}", request) == "a, b"
