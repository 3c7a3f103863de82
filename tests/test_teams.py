"""A team on one CPU machine, end to end, through the commands a team runs.

Two developers' stores are exported into a shared folder and pooled (`goldiff pool`); the
pooled dataset trains the tiny recipe on 2 processes (`accelerate launch --num_processes 2
-m goldiff distill --data ...`, gloo on the CPU); the distilled GGUF is served once by
`python -m llama_cpp.server`; and `goldiff serve`, in local mode pointed at that server
(`local.endpoint`), answers an inline completion over LSP and records it as the local
model's suggestion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("pyarrow")

from goldiff.distill.config import load_recipe
from goldiff.distill.gguf_export import export_checked
from goldiff.distill.model import build_model
from goldiff.distill.tokenizer import save_tokenizer, train_tokenizer
from goldiff.sources.registry import Registry

from tests.distill.test_train import _stdlib_texts
from tests.lsp_client import goldiff_client
from tests.sources.conftest import llama_cpp_server
from tests.sources.test_completion_lsp import complete_one_line, patient, suggestions
from tests.test_pool import DEVELOPERS, cli, fill_developer


def tiny_base(folder: Path) -> Path:
    """A random model of the tiny recipe as `goldiff bootstrap` leaves a base: a GGUF with its
    torch weights and tokenizer beside it in `<stem>-hf/` (training it first would only cost time)."""
    import torch

    hf = save_tokenizer(train_tokenizer(_stdlib_texts(60_000), vocab_size=512), folder / "goldiff-tiny-hf")
    torch.manual_seed(0)
    model = build_model(load_recipe("tiny"))
    model.save_pretrained(hf)
    [f16] = export_checked(model, hf, folder / "goldiff-tiny.gguf", quantize_to=())
    return Path(f16.path)


@pytest.mark.slow
async def test_pool_train_on_two_processes_serve_once_complete_over_lsp(tmp_path: Path) -> None:
    # 1. Each developer exports into the team's shared folder; the team pools them.
    shared, pooled = tmp_path / "shared", tmp_path / "pooled"
    for who, workspace in DEVELOPERS.items():
        home = fill_developer(tmp_path / who, who, workspace)
        cli("export", "--home", str(home), "--format", "parquet", "--out", str(shared), "--partitioned")
    summary = cli("pool", str(shared), "--out", str(pooled))
    assert (summary["rows"], summary["stores"]) == (10, 2)

    # 2. The training machine: 2 processes under accelerate launch, from the pooled dataset.
    base = tiny_base(tmp_path / "base")
    team = tmp_path / "team-home"
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "goldiff", "distill"]
    command += ["--home", str(team), "--data", str(pooled), "--base", str(base), "--name", "team"]
    command += ["--recipe", "tiny", "--steps", "4", "--batch-size", "4", "--seq-len", "64"]
    command += ["--threads", "1", "--quantize", "Q8_0", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("{")]  # the first process's only
    result = json.loads(line)
    assert (result["name"], result["processes"], result["steps"]) == ("team", 2, 4)
    assert result["lineage"]["stores"] == 2 and result["lineage"]["train_rows"] == 10
    entry = Registry(team).get("team")
    assert entry is not None and entry.path == result["gguf"] and result["qtype"] == "Q8_0"

    # 3. The model server: the distilled GGUF served once, for everyone.
    gguf = Path(result["gguf"])
    with llama_cpp_server(gguf, tmp_path / "llama_cpp_server.log") as endpoint:
        # 4. A developer's editor: goldiff serve in local mode, pointed at the team's server.
        home, uri = tmp_path / "dev-home", (tmp_path / "calc.py").as_uri()
        text = "def add(a, b):\n    return "
        options = {"mode": "local", "local": {"endpoint": endpoint}}
        async with goldiff_client(home, env=patient(home), options=options) as client:
            item = await complete_one_line(client, uri, text)
    [row] = suggestions(home)
    assert (row["source"], row["model"], row["text"]) == ("local", gguf.stem, item.insert_text)
