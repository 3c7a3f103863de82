"""A `pip install` of the Goldiff wheel alone has the default model.

The extension's first-run set-up installs exactly this wheel, so it must carry
`models/goldiff-default*.gguf` as package data, and the server must find it there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_carries_the_default_model_and_the_server_finds_it(tmp_path: Path) -> None:
    shipped = sorted((ROOT / "models").glob("goldiff-default*.gguf"))
    if not shipped:
        pytest.skip("this checkout has no models/goldiff-default*.gguf")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "w"),
            str(ROOT),
        ],
        check=True,
    )
    [wheel] = (tmp_path / "w").glob("goldiff-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert f"goldiff/models/{shipped[0].name}" in names
    # Installed on its own (no checkout beside it), the registry finds the model in the package.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GOLDIFF_DEFAULT_MODEL",)}
    env["PYTHONPATH"] = str(target)
    probe = (
        "import goldiff.sources.registry as r; p = r.default_model_path(); "
        "print(p); assert p is not None and p.is_relative_to(r.package_models_dir()); "
        "from goldiff.distill.config import recipe_path; "
        "assert recipe_path('default').is_relative_to(r.package_models_dir())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith(str(target / "goldiff" / "models"))
