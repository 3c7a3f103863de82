"""Fixtures for the completion sources: the tiny GGUF, its adapter, a real llama.cpp server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.tiny_models import write_tiny_gguf, write_tiny_lora_gguf


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("models") / "goldiff-tiny.gguf")


@pytest.fixture(scope="session")
def tiny_lora(tiny_gguf: Path) -> Path:
    return write_tiny_lora_gguf(tiny_gguf, tiny_gguf.parent / "goldiff-tiny-lora.gguf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_cpp_server(model: Path, log: Path, threads: int = 1) -> Iterator[str]:
    """`python -m llama_cpp.server` on a free loopback port; yields its OpenAI base URL."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "1024",
                "--n_threads",
                str(threads),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def openai_server(tiny_gguf: Path) -> Iterator[str]:
    with llama_cpp_server(tiny_gguf, tiny_gguf.parent / "llama_cpp_server.log") as base:
        yield base
