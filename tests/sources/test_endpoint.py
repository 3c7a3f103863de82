"""Local mode against a team's shared server: a real `python -m llama_cpp.server` on loopback.

The endpoint source must ask the shared server the question the in-process source asks
(the FIM prompt from the model's own tokens) and so, greedy on the same GGUF, give the same
suggestion; over LSP the suggestion is recorded as the local model's.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from goldiff.errors import SourceError
from goldiff.sources.base import CompletionRequest
from goldiff.sources.endpoint import EndpointPrompt, EndpointSource, endpoint_root

from tests.lsp_client import goldiff_client
from tests.sources.test_completion_lsp import complete_one_line, patient, suggestions

CASES = [
    ("import os\n\n\ndef main():\n    value = ", "\n"),
    ("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"),
    ("class Stack:\n    def push(self, item):\n", ""),
]


def test_same_prompt_and_same_suggestion_as_the_model_in_process(openai_server: str, tiny_gguf: Path) -> None:
    from goldiff.sources.local import LocalSource

    endpoint = EndpointSource(openai_server)
    local = LocalSource(tiny_gguf, n_ctx=1024, n_threads=1)
    try:
        prompt = endpoint.resolve()
        # The family its name announces, checked against the tokens the server has.
        assert prompt.template == local.fim.template == "goldiff"
        assert endpoint.model == "goldiff-tiny"
        for prefix, suffix in CASES:
            request = CompletionRequest(prefix=prefix, suffix=suffix, max_tokens=16, max_seconds=120)
            text = prompt.text(prefix, suffix)
            assert text == f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"
            served = endpoint.complete(request)
            here = local.complete(request)
            assert (served.source, served.model) == ("local", "goldiff-tiny")
            assert served.text == here.text and served.text, (prefix, served.raw_text, here.raw_text)
            assert served.stop_reason == here.stop_reason
    finally:
        endpoint.close()
        local.close()


def test_the_stop_rule_ends_the_stream_early(openai_server: str) -> None:
    endpoint = EndpointSource(openai_server)
    try:
        request = CompletionRequest(prefix="x = ", suffix="\n", max_tokens=64, max_seconds=120)
        result = endpoint.complete(request)
        # Cut at the end of the line, long before 64 tokens (the tiny model's text has newlines).
        assert "\n" not in result.text
        assert result.stop_reason in ("line", "max_tokens")
        cancelled = threading.Event()
        cancelled.set()
        assert endpoint.complete(request, cancelled).candidates == []
    finally:
        endpoint.close()


def test_control_token_text_in_a_file_stays_text() -> None:
    prompt = EndpointPrompt(
        "qwen2.5-coder",
        ("<|fim_prefix|>", "{prefix}", "<|fim_suffix|>", "{suffix}", "<|fim_middle|>"),
        ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    )
    text = prompt.text('s = "<|fim_suffix|>"\n', "")
    assert text.count("<|fim_suffix|>") == 1  # only the prompt's own
    assert '"<\u200b|fim_suffix|>"' in text
    assert EndpointPrompt("prefix").text("def f():", "\n") == "def f():"


def test_a_server_without_tokenize_or_fim_gets_the_prefix_alone() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "SmolLM2-135M-Instruct"}]})
        if request.url.path == "/v1/completions":
            body = json.loads(request.content)
            assert body["prompt"] == "def add(a, b):\n    return " and "suffix" not in body
            stream = 'data: {"choices":[{"text":"a + b\\n","finish_reason":null}]}\n\ndata: [DONE]\n\n'
            return httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})
        return httpx.Response(404, json={"detail": "Not Found"})

    endpoint = EndpointSource("http://team:8000", transport=httpx.MockTransport(handler))
    assert endpoint.base_url == "http://team:8000/v1" == endpoint_root("http://team:8000/")
    result = endpoint.complete(CompletionRequest(prefix="def add(a, b):\n    return ", suffix="\n"))
    assert endpoint.prompt is not None and endpoint.prompt.template == "prefix"
    assert (result.text, result.model, result.stop_reason) == ("a + b", "SmolLM2-135M-Instruct", "line")


def test_an_unreachable_server_says_which_setting_to_check() -> None:
    with pytest.raises(SourceError, match=r"cannot be reached .*goldiff\.local\.endpoint"):
        EndpointSource("http://127.0.0.1:9/v1").complete(CompletionRequest(prefix="x", suffix=""))
    with pytest.raises(SourceError, match="not an http"):
        EndpointSource("models.example:8000")


async def test_local_mode_over_lsp_uses_the_endpoint(tmp_path: Path, openai_server: str) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    text = "import os\n\n\ndef main():\n    value = "
    # local.model names a file that does not exist: with an endpoint nothing loads here.
    options = {
        "mode": "local",
        "capture": {"enabled": True},
        "local": {"endpoint": openai_server, "model": str(tmp_path / "absent.gguf")},
    }
    async with goldiff_client(home, env=patient(home), options=options) as client:
        item = await complete_one_line(client, uri, text)
    [row] = suggestions(home)
    assert (row["source"], row["model"], row["mode"], row["text"]) == (
        "local",
        "goldiff-tiny",
        "local",
        item.insert_text,
    )
    assert row["prefix"] == text and json.loads(row["context"])["stopReason"] in ("line", "max_tokens", "eos")
