"""The server starts fast: importing it (with inline completion) loads no model engine."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_server_loads_neither_llama_cpp_nor_torch() -> None:
    code = (
        "import sys, goldiff.lsp, goldiff.sources.completion, goldiff.sources.registry;"
        "print(sorted(m for m in ('llama_cpp', 'torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
