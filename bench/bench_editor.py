"""Keystroke → ghost text in the real VS Code, against the server's own time for the same requests.

Runs the extension's end-to-end test (code-server + headless Chromium, the packaged
.vsix, `goldiff serve` from this interpreter with the shipped default model) with only the
steps that reach ghost text and its `ghost-text-latency` step: a dozen new function bodies,
each timed in the page from the Enter keystroke to the first ghost-text decoration. The
baseline is the completion latency the server recorded for the very same requests, so the
ratio is what the editor adds (debounce, LSP round trip, rendering). The first run installs
the e2e tools (`extension/scripts/setup-e2e.sh`, cached in extension/.tools).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STEPS = "activate,capture-opt-in,ghost-text-accept,ghost-text-latency"


def run(quick: bool = False) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "GOLDIFF_E2E_STEPS": STEPS,
            "GOLDIFF_E2E_REQUIRE_ALL": "1",
            "GOLDIFF_E2E_PYTHON": sys.executable,
            "GOLDIFF_E2E_RESULTS": tmp,
        }
        done = subprocess.run(
            ["bash", str(ROOT / "extension" / "scripts" / "e2e.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        figures_path = Path(tmp) / "ghost-text-latency.json"
        if done.returncode != 0 or not figures_path.is_file():
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise RuntimeError(f"the editor run failed (exit {done.returncode}): {' | '.join(tail)}")
        figures = json.loads(figures_path.read_text("utf-8"))
    named = re.search(r"[\w.+-]+\.gguf", figures["model"])  # the model's file, not where it lies
    model = named.group(0) if named else figures["model"]
    server = "the server's own completion time, same requests, ms"
    return [
        {
            "name": f"keystroke_to_ghost_text_p50 ({model})",
            "value": figures["p50_ms"],
            "unit": "ms",
            "baseline": {"name": f"{server} p50", "value": figures["server_p50_ms"]},
            "target": "<= 150",
        },
        {
            "name": f"keystroke_to_ghost_text_p95 ({model})",
            "value": figures["p95_ms"],
            "unit": "ms",
            "baseline": {"name": f"{server} p95", "value": figures["server_p95_ms"]},
            "target": None,
        },
    ]


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
