"""`goldiff.compare` through a real LSP client: two tiny llama.cpp models on the store's gold."""

from __future__ import annotations

from pathlib import Path

import pytest
from goldiff.compare import eval_command
from goldiff.errors import ConfigError
from goldiff.protocol import CompareArgs
from goldiff.sources.registry import DEFAULT_MODEL_ENV, Registry
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.lsp_client import goldiff_client, server_env
from tests.test_export import fill_store
from tests.tiny_models import write_tiny_gguf, write_tiny_lora_gguf


def test_the_eval_line_names_both_models_and_leaves_the_frontier_out_unless_asked(tmp_path: Path) -> None:
    line = eval_command(tmp_path, CompareArgs("tiny", "/m/other.gguf", 50), tmp_path / "out")
    assert line[line.index("--limit") + 1] == "50"
    assert [line[i + 1] for i, a in enumerate(line) if a == "--model"] == ["tiny=tiny", "other=/m/other.gguf"]
    assert "--no-frontier" in line
    assert "--no-frontier" not in eval_command(tmp_path, CompareArgs("tiny", "frontier"), tmp_path)
    for other in ("tiny", "", "frontier.gguf"):
        with pytest.raises(ConfigError):
            eval_command(tmp_path, CompareArgs("tiny", other), tmp_path)


async def test_compare_runs_eval_on_held_out_gold_and_answers_the_report(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home)
    base = write_tiny_gguf(tmp_path / "tiny.gguf")
    lora = write_tiny_lora_gguf(base, tmp_path / "tiny-lora.gguf")
    registry = Registry(home)
    registry.register("tiny", base)
    registry.register("tiny-tuned", lora, kind="adapter", base="tiny")
    env = server_env(home, **{DEFAULT_MODEL_ENV: str(tmp_path / "none.gguf")})
    async with goldiff_client(home, env=env) as client:
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="goldiff.compare", arguments=[{"current": "tiny", "other": "tiny-tuned", "limit": 3}]
            )
        )
        assert (answer["current"], answer["other"]) == ("tiny", "tiny-tuned")
        models = answer["report"]["models"]
        assert set(models) == {"tiny", "tiny-tuned"}
        for m in models.values():
            assert 1 <= m["rows"] <= 3
            assert {"shown_accept_rate", "chars_saved", "latency_p50_ms", "accept_proxy"} <= set(m)
            assert m["latency_p50_ms"] > 0
        assert Path(answer["markdown"]).is_file()
        # Beside the evaluation: what the user was really shown, as recorded.
        shown = {(e["source"], e["model"]): e for e in answer["recorded"]["by_source"]}
        assert shown[("frontier", "gpt-x")]["shown"] > 0
        with pytest.raises(JsonRpcException, match="unknown local model"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="goldiff.compare", arguments=[{"current": "tiny", "other": "nope"}]
                )
            )


def test_recorded_figures_say_how_often_the_hidden_local_answer_matched_what_was_kept(tmp_path: Path) -> None:
    from goldiff.compare import recorded_figures
    from goldiff.store import TraceStore, open_database

    from tests.test_export import T0

    home = tmp_path / "home"
    fill_store(home)
    store = TraceStore(home / "traces.db")
    # Shadow mode: the local model answered beside the frontier's shown s1 ("return a + b" kept).
    for sid, text in (("h1", "return a"), ("h2", ""), ("h3", "return b")):
        store.record_suggestion(
            {
                "id": sid,
                "session_id": "sess",
                "document_id": "doc-calc.py",
                "ts": T0 + 1,
                "source": "local",
                "model": "tiny",
                "text": text,
                "latency_ms": 40.0,
                "shadow_of": "s1",
            }
        )
    store.close()
    db, _ = open_database(home / "traces.db")
    figures = recorded_figures(db)
    shadow = figures["shadow"]
    assert (shadow["answers"], shadow["empty"], shadow["matched_kept"]) == (3, 1, 1)
    assert shadow["local_latency_ms"] == pytest.approx(40.0)
    frontier = next(e for e in figures["by_source"] if e["source"] == "frontier")
    assert frontier["shown"] > 0 and 0 < frontier["acceptance_rate"] <= 1
    assert figures["survival_after_seconds"] == 600 and frontier["survival"] is not None
    # Shadow answers were never shown: they are not counted among what the user saw.
    assert all((e["source"], e["model"]) != ("local", "tiny") for e in figures["by_source"])
