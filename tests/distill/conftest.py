"""Shared fixtures for the distill tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def tiny_base(tmp_path: Path) -> Any:
    """A bootstrapped tiny base model laid out as `goldiff bootstrap` leaves it: the GGUF under
    `tmp_path/base`, with the torch weights and tokenizer beside it in `base/hf` so that
    `distill_from_store` can fine-tune from it. Returns bootstrap's result (`.gguf_path`)."""
    from goldiff.distill.bootstrap import bootstrap

    base = bootstrap(
        tmp_path / "boot",
        "tiny",
        dest=tmp_path / "base",
        quantize_to="Q8_0",
        progress=False,
        log=lambda _m: None,
        threads=1,
    )
    run = tmp_path / "boot" / "bootstrap" / "tiny"
    shutil.copytree(run / "run" / "final", tmp_path / "base" / "hf")
    for f in (run / "tokenizer").iterdir():
        shutil.copy(f, tmp_path / "base" / "hf" / f.name)
    return base
