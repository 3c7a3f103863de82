"""Serving profiles: prefix-only prompts, token healing, confidence stops, log-probabilities."""

from __future__ import annotations

import json
import math
from pathlib import Path

from goldiff.sources.base import CompletionRequest
from goldiff.sources.local import LocalSource
from goldiff.sources.profile import ServeProfile, load_profile, sidecar_path, write_profile

from tests.tiny_models import TINY_SPECIAL_IDS

FIM_IDS = {TINY_SPECIAL_IDS[k] for k in ("fim_pre", "fim_suf", "fim_mid")}


def test_prefix_only_prompt_carries_no_fim_tokens_and_no_suffix(tiny_gguf: Path) -> None:
    source = LocalSource(tiny_gguf, profile=ServeProfile(prompt="prefix"), n_threads=1)
    request = CompletionRequest(prefix="def f(x):\n    return ", suffix="\n\nprint(f(1))\n", max_tokens=4)
    completion = source.complete(request)
    assert source.prompt_mode == "prefix" and source.describe()["prompt"] == "prefix"
    assert source.last_prompt == source.tokenize(request.prefix)
    assert not FIM_IDS & set(source.last_prompt)
    assert len(completion.token_logprobs) == completion.completion_tokens
    assert all(lp <= 0.0 for lp in completion.token_logprobs)
    source.close()


def test_healing_takes_the_last_token_back_and_the_answer_starts_with_it(tiny_gguf: Path) -> None:
    plain = LocalSource(tiny_gguf, profile=ServeProfile(prompt="prefix"), n_threads=1)
    healed = LocalSource(tiny_gguf, profile=ServeProfile(prompt="prefix", heal=True), n_threads=1)
    for prefix in ("x = foo.ba", "def f(x):\n    ret", "items = [1, 2, "):
        request = CompletionRequest(prefix=prefix, suffix="\n", max_tokens=6)
        ids = plain.tokenize(prefix)
        prompt, heal = healed.build_prompt(request)
        assert prompt == ids[:-1] and heal == plain.llm.detokenize(ids[-1:])
        completion = healed.complete(request)
        raw = b"".join(healed.llm.detokenize([t]) for t in healed.last_tokens)
        assert raw.startswith(heal)  # the first token was constrained to continue the text
        assert completion.raw_text == raw[len(heal) :].decode("utf-8", "replace")[: len(completion.raw_text)]
    plain.close()
    healed.close()


def test_a_suggestion_stops_where_the_model_is_unsure(tiny_gguf: Path) -> None:
    sure = LocalSource(tiny_gguf, profile=ServeProfile(prompt="fim"), n_threads=1)
    request = CompletionRequest(prefix="import os\nimport ", suffix="\n", max_tokens=12)
    full = sure.complete(request)
    assert full.token_logprobs
    cutoff = math.exp(min(full.token_logprobs)) + 1e-6  # the least likely token falls below it
    unsure = LocalSource(tiny_gguf, profile=ServeProfile(prompt="fim", min_token_prob=cutoff), n_threads=1)
    cut = unsure.complete(request)
    assert cut.stop_reason == "unsure"
    assert cut.completion_tokens is not None and cut.completion_tokens < len(full.token_logprobs)
    assert cut.token_logprobs == full.token_logprobs[: cut.completion_tokens]
    sure.close()
    unsure.close()


def test_profile_sidecar_is_read_beside_the_model(tiny_gguf: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(tiny_gguf.read_bytes())
    assert load_profile(model) == ServeProfile()
    write_profile(model, prompt="prefix", heal=True, measured={"accept_proxy": 0.1})
    assert json.loads(sidecar_path(model).read_text())["prompt"] == "prefix"
    source = LocalSource(model, n_threads=1)
    assert source.prompt_mode == "prefix" and source.profile.heal
    source.close()
    sidecar_path(model).write_text("{not json")
    assert load_profile(model) == ServeProfile()  # a broken sidecar is ignored, not fatal
