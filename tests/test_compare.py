"""`goldiff.compare` through a real LSP client: two tiny llama.cpp models on the store's gold."""

from __future__ import annotations

from pathlib import Path

import pytest
from goldiff.compare import eval_command
from goldiff.distill.tiny import write_tiny_gguf, write_tiny_lora_gguf
from goldiff.errors import ConfigError
from goldiff.protocol import CompareArgs
from goldiff.sources.registry import DEFAULT_MODEL_ENV, Registry
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.lsp_client import goldiff_client, server_env
from tests.test_export import fill_store


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
        with pytest.raises(JsonRpcException, match="unknown local model"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="goldiff.compare", arguments=[{"current": "tiny", "other": "nope"}]
                )
            )
