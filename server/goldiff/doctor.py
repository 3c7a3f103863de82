"""`goldiff doctor`: check what Goldiff depends on and say what to fix."""

from __future__ import annotations

import importlib.metadata
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from goldiff.home import store_path


def run_checks(home: Path, echo: Callable[[str], None] = print) -> bool:
    ok = True

    def report(good: bool, what: str, fix: str = "") -> None:
        nonlocal ok
        ok = ok and good
        echo(f"[{'ok' if good else 'FAIL'}] {what}" + ("" if good else f"\n       fix: {fix}"))

    echo(f"Goldiff home: {home}")
    echo(f"Python {sys.version.split()[0]} at {sys.executable}")
    for dist in ("pygls", "lsprotocol", "sqlite-utils", "llama-cpp-python", "detect-secrets"):
        try:
            report(True, f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            report(False, f"{dist} is not installed", f"pip install -e . (or pip install {dist})")
    path = store_path(home)
    if path.exists():
        # Imported here: the store needs sqlite-utils, whose absence is reported above.
        from goldiff.store import inspect_file

        try:
            result, version = inspect_file(path)
            report(
                result == "ok",
                f"trace store {path}: integrity {result}, schema version {version}",
                "run `goldiff serve` once: a corrupt store is moved aside and a new one started",
            )
        except sqlite3.DatabaseError as exc:
            report(False, f"trace store {path}: {exc}", "move the file aside; Goldiff starts a new one")
        mode = path.stat().st_mode & 0o777
        report(mode & 0o077 == 0, f"trace store permissions {oct(mode)}", f"chmod 600 {path}")
    else:
        echo(f"[--] no trace store yet at {path}")
    from goldiff.sources.registry import default_model_path
    from goldiff.sources.repack import FaultRecords, faults_path

    model = default_model_path()
    report(
        model is not None and model.exists(),
        f"default local model: {model}",
        "run `goldiff bootstrap` to build it, or set goldiff.local.model",
    )

    faults = FaultRecords(faults_path(home)).read()
    if faults:
        for record in faults.values():
            echo(
                f"[--] llama.cpp's repacked kernels crashed for {record.get('model')} "
                f"({record.get('fault')}, {record.get('at')}, llama-cpp-python {record.get('llama_cpp')}): "
                "it loads without them on this machine"
            )
    else:
        echo(
            "[--] no repack faults recorded: the engine uses llama.cpp's repacked kernels for "
            "models of a type they measured faster for (Q4_0, IQ4_NL)"
        )
    key_vars = [v for v in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY") if os.environ.get(v)]
    echo(
        f"[--] frontier keys in the environment: {', '.join(key_vars) or 'none'} "
        "(the editor sends its key itself; Goldiff never stores it)"
    )
    return ok
