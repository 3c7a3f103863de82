"""The local source against a real tiny GGUF served by llama.cpp in-process."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from goldiff.errors import ModelLoadError
from goldiff.sources.base import CompletionRequest
from goldiff.sources.local import LocalSource

from tests.tiny_models import TINY_SPECIAL_IDS, write_tiny_gguf, write_tiny_lora_gguf

PRE, SUF, MID = TINY_SPECIAL_IDS["fim_pre"], TINY_SPECIAL_IDS["fim_suf"], TINY_SPECIAL_IDS["fim_mid"]


@pytest.fixture(scope="module")
def source(tiny_gguf: Path) -> LocalSource:
    return LocalSource(tiny_gguf)


def test_fim_prompt_is_token_ids_in_the_models_layout(source: LocalSource) -> None:
    request = CompletionRequest(prefix="def f(x):\n    return ", suffix="\n\nprint(f(1))\n", max_tokens=4)
    source.complete(request)
    assert source.fim.template == "goldiff"
    prefix_ids = source.tokenize(request.prefix)
    suffix_ids = source.tokenize(request.suffix)
    expected = [PRE, *prefix_ids, SUF, *suffix_ids, MID]
    # What llama.cpp actually evaluated: the prompt, then the generated tokens but the last.
    assert source.evaluated_tokens()[: len(expected)] == expected


def test_special_token_text_in_a_file_stays_text(source: LocalSource) -> None:
    request = CompletionRequest(prefix="s = '<|fim_suffix|><|fim_middle|>'\n", suffix="", max_tokens=2)
    source.complete(request)
    prompt = source.last_prompt
    assert prompt.count(SUF) == 1 and prompt.count(MID) == 1  # only ours
    assert prompt[0] == PRE and prompt[-1] == MID
    assert source.llm.detokenize(prompt[1 : prompt.index(SUF)]) == request.prefix.encode()


def test_line_mode_never_suggests_past_the_end_of_the_line(source: LocalSource) -> None:
    reasons = set()
    for i in range(12):
        request = CompletionRequest(prefix=f"v{i} = ", suffix="\n", max_tokens=64)
        completion = source.complete(request)
        assert "\n" not in completion.text
        assert completion.completion_tokens is not None and completion.completion_tokens <= 64
        reasons.add(completion.stop_reason)
    assert "line" in reasons  # the tiny model sometimes emits '):\\n': the stop rule cut there


def test_max_tokens_and_max_time(source: LocalSource) -> None:
    request = CompletionRequest(prefix="", suffix="", max_tokens=3)
    completion = source.complete(request)
    assert completion.completion_tokens == 3 or completion.stop_reason in ("block", "eos")
    late = source.complete(CompletionRequest(prefix="x = ", suffix="", max_seconds=0.0))
    assert late.stop_reason == "max_time" and late.completion_tokens == 0 and late.text == ""


def test_cancellation_stops_generation_mid_way(source: LocalSource, monkeypatch: pytest.MonkeyPatch) -> None:
    cancel = threading.Event()
    seen: list[int] = []
    detokenize = source.llm.detokenize

    def counting(tokens: list[int], *args: object, **kwargs: object) -> bytes:
        seen.extend(tokens)
        if len(seen) == 3:
            cancel.set()  # as the LSP handler does on $/cancelRequest, from another thread
        return detokenize(tokens, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(source.llm, "detokenize", counting)
    # An empty file: block mode, and a blank line is needed to stop: it runs long if not cancelled.
    completion = source.complete(CompletionRequest(prefix="", suffix="", max_tokens=64), cancel)
    assert completion.stop_reason == "cancelled"
    assert completion.completion_tokens == 3
    assert completion.candidates == []


def test_cancel_before_start_evaluates_nothing(source: LocalSource) -> None:
    cancel = threading.Event()
    cancel.set()
    completion = source.complete(CompletionRequest(prefix="brand new " * 30, suffix=""), cancel)
    assert completion.stop_reason == "cancelled" and completion.completion_tokens == 0


def test_prefix_reuse_evaluates_only_the_new_tokens(source: LocalSource) -> None:
    body = "".join(f"def handler_{i}(request):\n    return {i}\n\n" for i in range(12))
    # A generous time budget: on a busy machine the default one can expire mid-prompt.
    first = source.complete(
        CompletionRequest(prefix=body + "def ma", suffix="", max_tokens=4, max_seconds=120)
    )
    again = source.complete(
        CompletionRequest(prefix=body + "def main", suffix="", max_tokens=4, max_seconds=120)
    )
    assert first.prompt_tokens is not None and again.prompt_tokens is not None
    assert again.reused_tokens is not None
    assert again.reused_tokens >= first.prompt_tokens - 4  # all but the last few prompt tokens


def test_greedy_is_deterministic(source: LocalSource, tiny_gguf: Path) -> None:
    request = CompletionRequest(prefix="import os\nimport ", suffix="\n", max_tokens=12)
    first = source.complete(request).raw_text
    assert LocalSource(tiny_gguf).complete(request).raw_text == first


def test_adapter_is_loaded_on_top_of_the_base(tiny_gguf: Path, tiny_lora: Path, source: LocalSource) -> None:
    with_adapter = LocalSource(tiny_gguf, adapter_path=tiny_lora)
    assert with_adapter.model == f"{tiny_gguf.stem}+{tiny_lora.stem}"
    requests = [
        CompletionRequest(prefix=p, suffix="", max_tokens=16) for p in ("x = ", "def f", "class A:\n")
    ]
    base = [source.complete(r).raw_text for r in requests]
    adapted = [with_adapter.complete(r).raw_text for r in requests]
    assert base != adapted


def test_missing_corrupt_and_mismatched_files_are_clear(tmp_path: Path, tiny_gguf: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        LocalSource(tmp_path / "nope.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelLoadError, match="not a GGUF"):
        LocalSource(junk)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(tiny_gguf.read_bytes()[:4096])
    with pytest.raises(ModelLoadError, match="could not load"):
        LocalSource(truncated)
    wide = write_tiny_gguf(tmp_path / "wide.gguf", width=512)
    wrong = write_tiny_lora_gguf(wide, tmp_path / "wide-lora.gguf")
    with pytest.raises(ModelLoadError, match="adapter"):
        LocalSource(tiny_gguf, adapter_path=wrong)


def _file(name: str, n: int = 30) -> str:
    return "".join(f"def {name}_{i}(request):\n    return {i} * {name}\n\n" for i in range(n))


def test_switching_back_to_a_file_starts_from_its_saved_state(tiny_gguf: Path) -> None:
    source = LocalSource(tiny_gguf, cold_seconds=1e6)  # whole prompts, however busy the machine
    a = CompletionRequest(
        prefix=_file("alpha") + "x = ", suffix="", max_tokens=4, max_seconds=120, path="/a.py"
    )
    b = CompletionRequest(
        prefix=_file("beta") + "y = ", suffix="", max_tokens=4, max_seconds=120, path="/b.py"
    )
    first = source.complete(a)
    other = source.complete(b)
    assert other.reused_tokens is not None and other.reused_tokens < 8  # a cold file
    back = source.complete(a)
    assert source.restored == 1
    assert first.prompt_tokens is not None and back.reused_tokens == first.prompt_tokens - 1
    assert back.raw_text == first.raw_text  # the restored state answers as the original did
    # A file never seen is not helped by another file's state.
    c = CompletionRequest(
        prefix=_file("gamma") + "z = ", suffix="", max_tokens=4, max_seconds=120, path="/c.py"
    )
    assert (source.complete(c).reused_tokens or 0) < 8 and source.restored == 1


def test_cold_prompts_are_capped_to_the_latency_budget_in_whole_steps(tiny_gguf: Path) -> None:
    from goldiff.sources.local import MIN_PROMPT

    source = LocalSource(tiny_gguf, cold_seconds=0.0)  # as if this machine were very slow
    assert source.prompt_cap == MIN_PROMPT
    prefix = _file("delta", 80)
    completion = source.complete(CompletionRequest(prefix=prefix, suffix="", max_tokens=4, max_seconds=120))
    assert completion.prompt_tokens is not None and completion.prompt_tokens <= MIN_PROMPT
    kept = source.llm.detokenize(source.last_prompt[1:-2]).decode()
    assert prefix.endswith(kept)  # the end of the prefix, next to the cursor, is what stays
    longer = source.complete(CompletionRequest(prefix=prefix + "v", suffix="", max_tokens=4, max_seconds=120))
    assert longer.reused_tokens is not None and longer.reused_tokens >= completion.prompt_tokens - 2


def test_token_logprobs_are_the_models_own(tiny_gguf: Path, source: LocalSource) -> None:
    from goldiff.sources.llamacpp import load_llama

    request = CompletionRequest(prefix="def f(x):\n    return ", suffix="\n", max_tokens=6)
    completion = source.complete(request)
    assert len(completion.token_logprobs) == completion.completion_tokens
    assert all(lp <= 0.0 for lp in completion.token_logprobs)
    # The same prompt and tokens through a fresh model that keeps every position's logits.
    prompt = source.last_prompt
    generated = source.evaluated_tokens()[len(prompt) :]
    full = load_llama(str(tiny_gguf), n_ctx=512, logits_all=True, verbose=False)
    full.eval([*prompt, *generated])
    for i, lp in enumerate(completion.token_logprobs[: len(generated)]):
        row = np.asarray(full.scores[len(prompt) - 1 + i], dtype=np.float64)
        expected = row[generated[i]] - row.max() - np.log(np.exp(row - row.max()).sum())
        assert lp == pytest.approx(expected, abs=1e-3)
    full.close()


def _whole_answer_every_token(pieces: list[bytes], skip: int) -> tuple[list[str], str]:
    """How the engine decoded before: the whole answer again after every token."""
    out = b""
    texts = []
    for piece in pieces:
        out += piece
        texts.append(out[skip:].decode("utf-8", "ignore"))
    return texts, out[skip:].decode("utf-8", "replace")


def test_the_answer_is_decoded_once_and_byte_identical(source: LocalSource) -> None:
    from goldiff.sources.local import AnswerText

    text = "naïve = 'héllo wörld ✓ 😀'\n# ¿qué? 日本語\nx = '€'\n"
    # The tiny model's real pieces: byte-level tokens split most characters across tokens.
    pieces = [bytes(source.llm.detokenize([t])) for t in source.tokenize(text)]
    assert any(len(p) == 1 and p[0] >= 0x80 for p in pieces)
    # And bytes that are no UTF-8: a stray continuation, an invalid byte, a character cut short.
    pieces += [b"\xa9", b"ok", b"\xff", b"\n", b"\xe2\x9c"]
    for skip in (0, 1, 3, 7):
        expected, final = _whole_answer_every_token(pieces, skip)
        answer = AnswerText(skip)
        seen = ""
        for piece, want in zip(pieces, expected, strict=True):
            new_line = answer.add(piece)
            assert answer.text() == want
            assert new_line == (want.count("\n") > seen.count("\n"))
            seen = want
        assert answer.final() == final and answer.pieces == pieces


def test_generation_stops_where_the_whole_answer_decode_stopped(source: LocalSource) -> None:
    for prefix, suffix in (("def f(x):\n", ""), ("x = ", "\n"), ("class A:\n    ", "")):
        request = CompletionRequest(prefix=prefix, suffix=suffix, max_tokens=48, max_seconds=120)
        completion = source.complete(request)
        pieces = [bytes(source.llm.detokenize([t])) for t in source.last_tokens]
        texts, final = _whole_answer_every_token(pieces, 0)
        rule = request.stop_rule()
        assert all(rule.cut(t) is None for t in texts[:-1])  # it went on exactly while it should
        if completion.stop_reason in ("line", "block"):
            cut = rule.cut(texts[-1])
            assert cut is not None
            final = final[: rule.cut(final)]
        assert completion.raw_text == final


def _captured(prefix: str, path: str) -> CompletionRequest:
    return CompletionRequest(
        prefix=prefix, suffix="", max_tokens=4, max_seconds=120, path=path, captured=True
    )


def test_file_states_outlive_the_engine_on_disk(tiny_gguf: Path, tmp_path: Path) -> None:
    """A new engine (as after a crash) starts a file seen before from the state kept on disk."""
    states = tmp_path / "states"
    first_engine = LocalSource(tiny_gguf, cold_seconds=1e6, state_dir=states)
    a = _captured(_file("alpha") + "x = ", "/a.py")
    first = first_engine.complete(a)
    first_engine.complete(_captured(_file("beta") + "y = ", "/b.py"))  # a's state: left, kept
    first_engine.checkpoint()  # b's, as the idle engine does
    assert first_engine.disk is not None and first_engine.disk.flush()
    assert len(list(states.glob("*.state"))) == 2
    assert first_engine.disk.written == 2
    first_engine.close()

    engine = LocalSource(tiny_gguf, cold_seconds=1e6, state_dir=states)
    back = engine.complete(a)
    assert engine.restored == 1
    assert first.prompt_tokens is not None and back.reused_tokens == first.prompt_tokens - 1
    assert back.raw_text == first.raw_text  # the restored state answers as the original did
    engine.complete(_captured(_file("beta") + "y = ", "/b.py"))
    assert engine.restored == 2
    # Nothing more to write: what is on disk already spares these prompts.
    engine.checkpoint()
    assert engine.disk is not None and engine.disk.flush() and engine.disk.written == 0
    engine.close()

    # The model changed (another file at a path): the states made with the old one are ignored.
    import shutil

    model = Path(shutil.copy(tiny_gguf, tmp_path / "model.gguf"))
    engine = LocalSource(model, cold_seconds=1e6, state_dir=states)
    engine.complete(a)
    engine.complete(_captured(_file("beta") + "y = ", "/b.py"))
    assert engine.disk is not None and engine.disk.flush() and engine.disk.written == 1
    engine.close()
    write_tiny_gguf(model, seed=1)  # replaced in place, as a new distillation would
    changed = LocalSource(model, cold_seconds=1e6, state_dir=states)
    assert (changed.complete(a).reused_tokens or 0) < 8 and changed.restored == 0
    changed.close()


def test_uncaptured_and_secret_files_never_reach_the_disk(tiny_gguf: Path, tmp_path: Path) -> None:
    states = tmp_path / "states"
    engine = LocalSource(tiny_gguf, cold_seconds=1e6, state_dir=states)
    excluded = CompletionRequest(prefix=_file("gamma") + "z = ", suffix="", max_tokens=4, path="/env.py")
    engine.complete(excluded)  # capture off, or the file excluded
    engine.checkpoint()
    secret = _file("delta") + 'OPENAI_API_KEY = "sk-proj-' + "A1b2C3d4" * 6 + '"\nv = '
    engine.complete(_captured(secret, "/settings.py"))
    engine.checkpoint()
    engine.complete(_captured(_file("epsilon") + "w = ", "/kept.py"))
    engine.checkpoint()
    assert engine.disk is not None and engine.disk.flush()
    assert engine.disk.written == 1  # only the captured file without a secret
    engine.close()


def test_the_state_folder_is_bounded(tmp_path: Path) -> None:
    from goldiff.sources.states import StateCache

    cache = StateCache(tmp_path / "states", "model-a", max_files=3, max_bytes=10_000)
    for i in range(5):
        cache.save(f"/f{i}.py", [1, 2, i], bytes(1000))
        assert cache.flush()
    assert len(list((tmp_path / "states").glob("*.state"))) == 3
    assert cache.load("/f0.py") is None and cache.load("/f4.py") == ([1, 2, 4], bytes(1000))
    cache.save("/big.py", [1], bytes(9_000))
    assert cache.flush()
    assert sum(p.stat().st_size for p in (tmp_path / "states").glob("*.state")) <= 10_000
    assert StateCache(tmp_path / "states", "model-b").load("/big.py") is None  # another model's
    cache.close()
