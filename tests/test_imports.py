"""Starting the server must stay light: no training or inference stack on import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.lsp_client import server_env
from tests.pipe_client import PipeClient

HEAVY = ("torch", "transformers", "llama_cpp", "peft", "trl", "datasets", "matplotlib")


def test_importing_the_server_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, goldiff.lsp, goldiff.cli;"
        f"print(','.join(m for m in {HEAVY!r} if sys.modules.get(m) is not None))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_running_server_loads_no_heavy_native_libraries(tmp_path: Path) -> None:
    client = PipeClient([sys.executable, "-m", "goldiff", "serve"], server_env(tmp_path))
    try:
        # Frontier mode: nothing asks for the local model, so nothing may load llama.cpp.
        client.initialize({"capture": {"enabled": True}, "mode": "frontier"})
        maps = Path(f"/proc/{client.proc.pid}/maps").read_text()
    finally:
        client.close()
    for lib in ("libtorch", "pandas/_libs", "libllama", "matplotlib"):
        assert lib not in maps
