"""The VS Code extension in a real VS Code, driven from pytest.

Runs `extension/scripts/e2e.sh` (code-server + headless Chromium, the packaged .vsix, and
this interpreter's Goldiff server) and checks the per-step report it writes. The steps
and their screenshots live in `extension/test-results/`; the script is the same one CI
calls directly, so a failure here reproduces with `bash extension/scripts/e2e.sh`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "extension" / "scripts" / "e2e.sh"
RESULTS = REPO / "extension" / "test-results"

# Steps that must pass whatever the server can do; the others may be skipped (with the
# reason in the report) while the server lacks their feature.
ALWAYS = (
    "activate",
    "capture-opt-in",
    "toggle-model",
    "api-key",
    "server-restart-after-crash",
    "terminal-command",
    "show-stats",
    "forget-workspace",
    "api-key-never-written",
)


@pytest.mark.timeout(900)  # the first run installs code-server (about 2 minutes)
def test_extension_in_a_real_vscode() -> None:
    if shutil.which("npm") is None or shutil.which("bash") is None:
        pytest.skip("npm and bash are needed to install code-server and build the extension")
    env = {**os.environ, "GOLDIFF_E2E_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=880)
    report_file = RESULTS / "e2e-report.json"
    assert report_file.exists(), f"no report; the run failed early:\n{proc.stderr[-4000:]}"
    report = json.loads(report_file.read_text())
    outcomes = {step["name"]: step["outcome"] for step in report}
    details = "\n".join(f"{s['outcome']:8} {s['name']}: {s['detail']}" for s in report)
    assert proc.returncode == 0, f"{details}\n{proc.stderr[-4000:]}"
    for name in ALWAYS:
        assert outcomes.get(name) == "passed", details
    assert all(outcome in ("passed", "skipped") for outcome in outcomes.values()), details
