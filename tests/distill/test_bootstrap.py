"""`bootstrap` on the tiny recipe, end to end: this machine's code → tokenizer → training →
GGUF → parity → Q8_0 → a file that llama.cpp loads and completes with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
llama_cpp = pytest.importorskip("llama_cpp")

from goldiff.distill.bootstrap import bootstrap  # noqa: E402
from goldiff.sources.llamacpp import load_llama  # noqa: E402


@pytest.mark.slow
def test_tiny_bootstrap_writes_a_gguf_llama_cpp_serves(tmp_path: Path) -> None:
    messages: list[str] = []
    result = bootstrap(
        tmp_path / "home",
        "tiny",
        dest=tmp_path / "models",
        quantize_to="Q8_0",
        progress=False,
        log=messages.append,
        threads=1,
    )

    gguf = Path(result.gguf_path)
    assert gguf == tmp_path / "models" / "goldiff-tiny-Q8_0.gguf"
    assert result.qtype == "Q8_0" and gguf.stat().st_size == result.size_bytes
    assert result.parity["argmax_agreement"] >= 0.9
    assert result.tokens_seen == 40 * 4 * 64
    assert result.corpus_tokens["train"] > 0 and result.corpus_tokens["val"] > 0
    assert any("Training tiny" in m for m in messages)

    card = json.loads(Path(result.card_path).read_text())
    assert card["licences"] and all(d["licence"] for d in card["licences"])
    assert card["recipe"]["hidden_size"] == 256

    # llama.cpp loads it and completes a FIM prompt built from the model's own tokens.
    llm = load_llama(str(gguf), n_ctx=256, verbose=False)
    pre = llm.tokenize(b"<|fim_prefix|>", add_bos=False, special=True)
    assert len(pre) == 1
    prompt = pre + llm.tokenize(b"def add(a, b):\n    return ", add_bos=False, special=False)
    prompt += llm.tokenize(b"<|fim_suffix|><|fim_middle|>", add_bos=False, special=True)
    out = llm.create_completion(prompt, max_tokens=8, temperature=0.0)
    assert isinstance(out["choices"][0]["text"], str)
    assert out["usage"]["completion_tokens"] >= 1

    # The same run through the command line resumes from what is on disk instead of starting over.
    from click.testing import CliRunner
    from goldiff.cli import main

    args = ["bootstrap", "--home", str(tmp_path / "home"), "--recipe", "tiny"]
    args += ["--dest", str(tmp_path / "models"), "--quantize", "Q8_0", "--max-steps", "40"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert f"wrote {gguf}" in done.output
    state = json.loads((tmp_path / "home" / "bootstrap" / "tiny" / "run" / "result.json").read_text())
    assert state["tokens_seen"] == result.tokens_seen  # nothing trained again
    assert state["val_loss"] == pytest.approx(result.val_loss)
