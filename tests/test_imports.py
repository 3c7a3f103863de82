"""Starting the server must stay light: no training or inference stack on import."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "llama_cpp", "peft", "trl", "datasets", "matplotlib")


def test_importing_the_server_does_not_import_heavy_modules() -> None:
    code = f"import sys, goldiff.lsp, goldiff.cli;print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
