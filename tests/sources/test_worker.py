"""The local engine in its own process: the same answers, cancellation, death and restart."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from goldiff.errors import EngineError, ModelLoadError
from goldiff.sources.base import CompletionRequest
from goldiff.sources.local import LocalSource
from goldiff.sources.worker import WorkerSource


@pytest.fixture
def worker(tiny_gguf: Path) -> WorkerSource:
    source = WorkerSource(tiny_gguf, threads=1)
    yield source
    source.close()


def _children() -> list[int]:
    me = os.getpid()
    pids = []
    for task in Path(f"/proc/{me}/task").iterdir():
        children = (task / "children").read_text().split()
        pids.extend(int(c) for c in children)
    return pids


def test_the_worker_answers_as_the_engine_does_in_process(worker: WorkerSource, tiny_gguf: Path) -> None:
    request = CompletionRequest(prefix="def f(x):\n    return ", suffix="\n", max_tokens=8, path="/f.py")
    remote = worker.complete(request)
    local = LocalSource(tiny_gguf, n_threads=1).complete(request)
    assert worker.pid is not None and worker.pid != os.getpid()
    assert (remote.text, remote.raw_text, remote.completion_tokens) == (
        local.text,
        local.raw_text,
        local.completion_tokens,
    )
    assert remote.token_logprobs == pytest.approx(local.token_logprobs, abs=1e-4)
    assert len(remote.token_logprobs) == remote.completion_tokens


def test_cancel_reaches_the_worker(worker: WorkerSource) -> None:
    cancel = threading.Event()
    # Block mode in an empty file: the tiny model would run to max_tokens without a cancel.
    request = CompletionRequest(prefix="", suffix="", max_tokens=2000, max_seconds=120)
    threading.Timer(0.05, cancel.set).start()
    completion = worker.complete(request, cancel)
    assert completion.stop_reason == "cancelled" and completion.candidates == []
    assert worker.complete(CompletionRequest(prefix="x = ", suffix="", max_tokens=2)).completion_tokens


def test_a_killed_worker_fails_its_request_and_comes_back(worker: WorkerSource) -> None:
    told: list[str] = []
    worker.on_crash = told.append
    pid = worker.pid
    assert pid is not None
    threading.Timer(0.1, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(EngineError, match="SIGKILL"):
        worker.complete(CompletionRequest(prefix="", suffix="", max_tokens=5000, max_seconds=120))
    assert len(told) == 1 and "SIGKILL" in told[0]
    deadline = time.monotonic() + 60
    while worker.pid in (None, pid):  # restarted in the background after a short backoff
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert worker.restarts == 1 and worker.last_restart_ms is not None
    assert worker.complete(CompletionRequest(prefix="x = ", suffix="", max_tokens=2)).completion_tokens == 2


def test_a_hung_worker_is_killed_at_the_deadline(
    worker: WorkerSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    import goldiff.sources.worker as module

    monkeypatch.setattr(module, "HANG_GRACE_SECONDS", 0.5)
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # alive, but never answers
    started = time.monotonic()
    with pytest.raises(EngineError, match="did not answer"):
        worker.complete(CompletionRequest(prefix="x = ", suffix="", max_tokens=4, max_seconds=0.5))
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 60
    while worker.pid in (None, pid):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert worker.complete(CompletionRequest(prefix="x = ", suffix="", max_tokens=2)).completion_tokens == 2


def test_a_worker_that_dies_while_loading_is_a_load_error(tiny_gguf: Path) -> None:
    """A native fault in llama.cpp's loader kills the worker before it is ready."""
    before = set(_children())
    stop = threading.Event()

    def kill_new_children() -> None:
        while not stop.is_set():
            for pid in set(_children()) - before:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.0005)

    killer = threading.Thread(target=kill_new_children, daemon=True)
    killer.start()
    try:
        with pytest.raises(ModelLoadError, match="died while loading"):
            WorkerSource(tiny_gguf)
    finally:
        stop.set()
        killer.join()


def test_the_memory_limit_applies_to_the_worker(tiny_gguf: Path) -> None:
    with pytest.raises(ModelLoadError):
        WorkerSource(tiny_gguf, max_memory_mb=60)  # far too little for Python and llama.cpp


def test_edit_prompts_run_in_the_worker_too(worker: WorkerSource, tiny_gguf: Path) -> None:
    remote = worker.raw_complete("def area(r):\n    return", 8, ["<|region_end|>"])
    local = LocalSource(tiny_gguf, n_threads=1).raw_complete(
        "def area(r):\n    return", 8, ["<|region_end|>"]
    )
    assert remote == local and remote["completion_tokens"] == 8


def test_the_worker_serves_the_models_profile_and_gate(tiny_gguf: Path, tmp_path: Path) -> None:
    """The profile's decoding (prefix prompt, healing, confidence stop) and the gate run in the
    worker, and what they add to a completion comes back over the protocol."""
    import shutil

    from goldiff.gate import FEATURES, Gate
    from goldiff.sources.profile import write_profile

    model = shutil.copy(tiny_gguf, tmp_path / "goldiff-tiny.gguf")
    write_profile(model, prompt="prefix", heal=True, min_token_prob=0.01, context_tokens=512)
    zeros = [0.0] * len(FEATURES)
    shows = Gate(weights=zeros, bias=2.0, mean=zeros, std=[1.0] * len(FEATURES)).save(tmp_path / "show.json")
    hides = Gate(weights=zeros, bias=-2.0, mean=zeros, std=[1.0] * len(FEATURES)).save(tmp_path / "hide.json")
    request = CompletionRequest(prefix="def f(x):\n    return x +", suffix="\n", max_tokens=8, path="/f.py")
    for gate in (shows, hides):
        local_source = LocalSource(model, n_threads=1, gate=gate)
        local = local_source.complete(request)
        local_source.close()
        worker = WorkerSource(model, threads=1, gate=gate)
        try:
            remote = worker.complete(request)
            info = worker.describe()
        finally:
            worker.close()
        assert (info["prompt"], info["heal"], info["n_ctx"]) == ("prefix", True, 512)
        assert info["gate"] is not None
        assert (remote.text, remote.raw_text, remote.stop_reason) == (
            local.text,
            local.raw_text,
            local.stop_reason,
        )
        assert remote.token_logprobs == pytest.approx(local.token_logprobs, abs=1e-4)
        assert remote.gate_score is not None and remote.gate_score == pytest.approx(local.gate_score)
        if gate == shows:
            assert remote.text and remote.gate_score > 0.5
        else:  # the same answer, scored and hidden
            assert remote.stop_reason == "gated" and remote.candidates == [] and remote.gate_score < 0.5


def test_a_restarted_worker_starts_a_file_seen_before_from_its_kept_state(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    states = tmp_path / "home" / "cache" / "states"
    worker = WorkerSource(tiny_gguf, threads=1, state_dir=states, cold_seconds=1e6)
    try:
        prefix = "".join(f"def alpha_{i}(request):\n    return {i} * alpha\n\n" for i in range(30))
        request = CompletionRequest(
            prefix=prefix + "x = ", suffix="", max_tokens=4, max_seconds=120, path="/a.py", captured=True
        )
        first = worker.complete(request)
        deadline = time.monotonic() + 60
        # Written once the engine is idle; under its name only once whole (write, then rename).
        while not list(states.glob("*.state")):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while worker.pid in (None, pid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        back = worker.complete(request)
        assert worker.restarts == 1
        assert first.prompt_tokens is not None and back.reused_tokens == first.prompt_tokens - 1
        assert back.raw_text == first.raw_text
    finally:
        worker.close()
