"""Edit sources: the shared edit prompt over real loopback HTTP, and a real llama.cpp model."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from goldiff.agent.rewrite import (
    EDIT_SYSTEM_PROMPT,
    ChatEditSource,
    LocalEditSource,
    build_request,
    clean_reply,
)
from goldiff.errors import FrontierError
from goldiff.prompts import EDIT_CURSOR, EDIT_REGION_END, EDIT_REGION_START
from goldiff.sources.frontier import AnthropicSource, OpenAICompatibleSource

from tests.sources.test_frontier import Script, error, scripted
from tests.tiny_models import write_tiny_gguf

TEXT = "import math\n\n\ndef area(r):\n    return 3.14 * r * r\n\n\nprint(area(2))\n"
REGION = "def area(r):\n    return 3.14 * r * r\n"
NEW = "def area(r):\n    return math.pi * r * r\n"


def request() -> object:
    start = TEXT.index(REGION)
    return build_request(
        TEXT,
        start,
        start + len(REGION),
        path="geometry.py",
        language="python",
        instruction="use math.pi",
        recent_edits=["--- a/geometry.py\n+++ b/geometry.py\n@@ -1,0 +1,1 @@\n+import math\n"],
    )


def test_the_request_carries_the_region_its_context_and_the_shared_format() -> None:
    req = build_request(
        TEXT, TEXT.index(REGION), TEXT.index(REGION) + len(REGION),
        path="geometry.py", language="python", instruction="use math.pi", recent_edits=[],
    )  # fmt: skip
    assert (req.context_before, req.region, req.context_after) == (
        "import math\n\n\n",
        REGION,
        "\n\nprint(area(2))\n",
    )
    prompt = req.prompt()
    assert prompt.startswith("### File: geometry.py (python)\n### Instruction\nuse math.pi\n")
    assert f"{EDIT_REGION_START}{REGION}{EDIT_REGION_END}" in prompt
    assert prompt.endswith(f"### Rewrite\n{EDIT_REGION_START}")


@pytest.mark.parametrize(
    ("reply", "region"),
    [
        (NEW + EDIT_REGION_END, NEW),
        (NEW + EDIT_REGION_END + "\nsome chatter", NEW),
        ("```python\n" + NEW + "```", NEW),
        ("def area(r):" + EDIT_CURSOR + "\n    pass\n" + EDIT_REGION_END, "def area(r):\n    pass\n"),
    ],
)
def test_clean_reply(reply: str, region: str) -> None:
    assert clean_reply(reply) == region


def test_openai_compatible_chat_gets_the_edit_prompt() -> None:
    answer = {
        "choices": [{"message": {"content": NEW + EDIT_REGION_END}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 14},
    }
    script = Script((200, answer, {}))
    with scripted(script) as url:
        source = ChatEditSource(OpenAICompatibleSource(base_url=url, model="gpt-x", api_key="sk-test"))
        req = request()
        result = source.rewrite(req, threading.Event())  # type: ignore[arg-type]
    (path, body, headers), *_ = script.seen
    assert path == "/v1/chat/completions"
    assert body["model"] == "gpt-x" and body["temperature"] == 0
    assert body["messages"] == [
        {"role": "system", "content": EDIT_SYSTEM_PROMPT},
        {"role": "user", "content": req.prompt()},  # type: ignore[attr-defined]
    ]
    assert headers["authorization"] == "Bearer sk-test"
    assert (result.text, result.source, result.model) == (NEW, "frontier", "gpt-x")
    assert (result.prompt_tokens, result.completion_tokens) == (120, 14)


def test_anthropic_messages_get_the_edit_prompt() -> None:
    answer = {
        "content": [{"type": "text", "text": "```python\n" + NEW + "```"}],
        "usage": {"input_tokens": 99, "output_tokens": 12},
        "stop_reason": "end_turn",
    }
    script = Script((200, answer, {}))
    with scripted(script) as url:
        source = ChatEditSource(AnthropicSource(base_url=url, model="claude-x", api_key="k"))
        result = source.rewrite(request(), threading.Event())  # type: ignore[arg-type]
    (path, body, _headers), *_ = script.seen
    assert path == "/v1/messages"
    assert body["system"] == EDIT_SYSTEM_PROMPT and body["model"] == "claude-x"
    assert (result.text, result.prompt_tokens, result.completion_tokens) == (NEW, 99, 12)


def test_a_refused_edit_request_says_what_to_fix() -> None:
    with scripted(Script(error(401, "bad key"))) as url:
        source = ChatEditSource(OpenAICompatibleSource(base_url=url, model="m", api_key="sk-secret"))
        with pytest.raises(FrontierError) as info:
            source.rewrite(request(), threading.Event())  # type: ignore[arg-type]
    assert "sk-secret" not in str(info.value)


def test_local_model_rewrites_through_llama_cpp(tmp_path: Path) -> None:
    from goldiff.sources.local import LocalSource

    model = LocalSource(write_tiny_gguf(tmp_path / "tiny.gguf"), n_threads=1)
    try:
        source = LocalEditSource(model)
        result = source.rewrite(request(), threading.Event())  # type: ignore[arg-type]
        # The tiny model writes noise; what matters is the path: the whole shared prompt
        # went through llama.cpp and the answer was cut at the region's end marker.
        assert result.source == "local" and result.model == "tiny"
        assert result.prompt_tokens == len(model.llm.tokenize(request().prompt().encode()))  # type: ignore[attr-defined]
        assert result.completion_tokens is not None and result.completion_tokens > 0
        assert EDIT_REGION_END not in result.text
    finally:
        model.close()
