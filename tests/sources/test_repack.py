"""llama.cpp's repacked kernels: only in the engine worker, and dropped for good once they fault.

The fault is real: a `sitecustomize.py` put on the worker's PYTHONPATH by the test (never by
Goldiff) makes the worker kill itself with SIGSEGV where a repacking load, or the first
completion after one, would fault on a CPU whose repack is broken. Everything else (the
worker, llama.cpp, the record file, the restart) is the product's own code.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import textwrap
import time
from pathlib import Path

import pytest
from goldiff.errors import EngineError
from goldiff.sources.base import CompletionRequest
from goldiff.sources.repack import FaultRecords, faults_path, file_type, is_fault, worth_repacking
from goldiff.sources.worker import WorkerSource

from tests.lsp_client import Editor, goldiff_client, server_env
from tests.test_faults_engine import _complete, _engine

REQUEST = CompletionRequest(prefix="def f(x):\n    return ", suffix="\n", max_tokens=4, path="/f.py")

# Test-only: the worker process imports this at start-up (PYTHONPATH), before goldiff.
FAULT_SITECUSTOMIZE = textwrap.dedent(
    """
    import os
    import signal

    _MODE = os.environ.get("GOLDIFF_TEST_REPACK_FAULT")
    if _MODE == "load":
        import goldiff.sources.llamacpp as _llamacpp

        _real_load = _llamacpp.load_llama_with

        def _faulting_load(model_path, *, repack, **kwargs):
            if repack:  # where llama.cpp's AMX repack of a Q6_K tensor dies
                os.kill(os.getpid(), signal.SIGSEGV)
            return _real_load(model_path, repack=repack, **kwargs)

        _llamacpp.load_llama_with = _faulting_load
    elif _MODE == "first":
        from goldiff.sources import local as _local

        _real_complete = _local.LocalSource.complete

        def _faulting_complete(self, *args, **kwargs):
            if self.repack.on:  # a kernel that faults on its first computation
                os.kill(os.getpid(), signal.SIGSEGV)
            return _real_complete(self, *args, **kwargs)

        _local.LocalSource.complete = _faulting_complete
    """
)


@pytest.fixture(scope="module")
def q4_0(tiny_gguf: Path) -> Path:
    """The tiny model as Q4_0: a type llama.cpp repacks on x86 CPUs with AVX2 and up.

    Written with llama.cpp's quantizer directly: Q4_0 is not a type Goldiff offers.
    """
    import llama_cpp

    dst = tiny_gguf.parent / "goldiff-tiny-q4_0.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    status = llama_cpp.llama_model_quantize(
        os.fsencode(str(tiny_gguf)), os.fsencode(str(dst)), ctypes.byref(params)
    )
    assert status == 0
    return dst


@pytest.fixture
def faulty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Workers started from here on load the fault-injecting sitecustomize."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAULT_SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return monkeypatch


def _wait_restarted(worker: WorkerSource, pid: int | None) -> None:
    deadline = time.monotonic() + 60
    while worker.pid in (None, pid):  # restarted in the background after a short backoff
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_worker_loads_with_repacked_kernels_and_answers(q4_0: Path) -> None:
    worker = WorkerSource(q4_0, threads=1)
    try:
        info = worker.describe()
        assert worker.complete(REQUEST).completion_tokens == 4
    finally:
        worker.close()
    assert info["repackSetting"] == "auto" and info["repackFault"] is None
    repack = info["repack"]
    assert repack["on"] is True
    # What it reports is what llama.cpp logged: repacked weights live in an extra buffer.
    assert bool(repack["tensors"]) == bool(repack["buffers"])
    assert info["repackMode"].startswith("repacked kernels" if repack["tensors"] else "plain kernels")


def test_off_never_repacks(q4_0: Path) -> None:
    worker = WorkerSource(q4_0, threads=1, repack="off")
    try:
        info = worker.describe()
        assert worker.complete(REQUEST).completion_tokens == 4
    finally:
        worker.close()
    assert info["repack"] == {"on": False, "tensors": 0, "buffers": []}
    assert "goldiff.local.repack is off" in info["repackMode"]


def _a_new_engine_never_tries_again(model: Path, faults: Path) -> None:
    """A new engine for the same model reads the record and loads plain: the fault injection
    is still there, so a try would crash it and say so."""
    told: list[str] = []
    again = WorkerSource(model, threads=1, faults=faults, on_crash=told.append)
    try:
        assert again.describe()["repack"]["on"] is False
        assert again.complete(REQUEST).completion_tokens == 4
    finally:
        again.close()
    assert told == [] and again.restarts == 0


def test_a_fault_while_loading_repacked_is_recorded_and_the_model_loads_without(
    q4_0: Path, tmp_path: Path, faulty: pytest.MonkeyPatch
) -> None:
    faulty.setenv("GOLDIFF_TEST_REPACK_FAULT", "load")
    faults = faults_path(tmp_path / "home")
    told: list[str] = []
    worker = WorkerSource(q4_0, threads=1, faults=faults, on_crash=told.append)
    try:
        info = worker.describe()
        assert worker.complete(REQUEST).completion_tokens == 4
    finally:
        worker.close()
    assert len(told) == 1
    assert "llama.cpp's faster kernels crashed on this CPU for goldiff-tiny-q4_0" in told[0]
    assert "Goldiff now loads it without them" in told[0]
    assert info["repack"]["on"] is False and "SIGSEGV while loading" in info["repackMode"]
    records = json.loads(faults.read_text())
    assert [r["model"] for r in records.values()] == [str(q4_0)]
    assert "SIGSEGV" in next(iter(records.values()))["fault"]

    _a_new_engine_never_tries_again(q4_0, faults)


def test_a_fault_before_the_first_answer_fails_that_request_and_the_next_worker_runs_plain(
    q4_0: Path, tmp_path: Path, faulty: pytest.MonkeyPatch
) -> None:
    faulty.setenv("GOLDIFF_TEST_REPACK_FAULT", "first")
    faults = faults_path(tmp_path / "home")
    told: list[str] = []
    worker = WorkerSource(q4_0, threads=1, faults=faults, on_crash=told.append)
    try:
        assert worker.describe()["repack"]["on"] is True
        pid = worker.pid
        with pytest.raises(EngineError, match="SIGSEGV"):
            worker.complete(REQUEST)  # the pending request gets nothing
        assert len(told) == 1 and "faster kernels crashed on this CPU" in told[0]
        assert FaultRecords(faults).get(q4_0) is not None
        _wait_restarted(worker, pid)
        assert worker.complete(REQUEST).completion_tokens == 4
        info = worker.describe()
        assert worker.restarts == 1 and info["repack"]["on"] is False
        assert "before its first answer" in info["repackMode"]
        assert len(told) == 1  # told once
    finally:
        worker.close()
    _a_new_engine_never_tries_again(q4_0, faults)


def test_a_fault_where_nothing_was_repacked_is_an_ordinary_crash(
    tiny_gguf: Path, tmp_path: Path, faulty: pytest.MonkeyPatch
) -> None:
    """The tiny F16 model loaded asking for repacking: llama.cpp repacks none of its weights,
    so its crash is not the kernels'. ("auto" asks only for types measured faster: forced.)"""
    faulty.setattr("goldiff.sources.worker.worth_repacking", lambda model: True)
    faulty.setenv("GOLDIFF_TEST_REPACK_FAULT", "first")
    faults = faults_path(tmp_path / "home")
    told: list[str] = []
    worker = WorkerSource(tiny_gguf, threads=1, faults=faults, on_crash=told.append)
    try:
        info = worker.describe()
        assert info["repack"] == {"on": True, "tensors": 0, "buffers": []}
        assert "repacks none" in info["repackMode"]
        with pytest.raises(EngineError, match="SIGSEGV"):
            worker.complete(REQUEST)
    finally:
        worker.close()
    assert len(told) == 1 and "restarting" in told[0] and "kernels" not in told[0]
    assert not faults.exists()


@pytest.mark.faults
async def test_through_the_server_the_user_is_told_once_and_capture_goes_on(
    q4_0: Path, tmp_path: Path, faulty: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    uri = (tmp_path / "a.py").as_uri()
    options = {"mode": "local", "local": {"model": str(q4_0)}}
    env = server_env(home, GOLDIFF_COMPLETION_TIMEOUT="60", GOLDIFF_TEST_REPACK_FAULT="first")
    async with goldiff_client(home, options=options, env=env) as client:
        editor = Editor(client)
        editor.open(uri, "import os\n")
        first = await _complete(client, uri, editor.texts[uri])
        assert first is None or not first.items  # the worker died under it: nothing to show
        editor.type(uri, len(editor.texts[uri]), "def after():\n    return ")
        deadline = time.monotonic() + 60
        while (await _engine(client)).get("restarts", 0) < 1 or (await _engine(client)).get("pid") is None:
            assert time.monotonic() < deadline, "no new engine worker within 60 s"
            await asyncio.sleep(0.05)
        again = await _complete(client, uri, editor.texts[uri])
        assert again is not None and again.items
        engine = await _engine(client)
        assert engine["repack"]["on"] is False and "before its first answer" in engine["repackMode"]
        told = [m.message for m in client.messages if "kernels" in m.message]
        assert len(told) == 1 and "Goldiff now loads it without them" in told[0]
        assert "Recording goes on" in told[0]
    assert FaultRecords(faults_path(home)).get(q4_0) is not None
    from goldiff import audit
    from goldiff.store import open_database

    db, _ = open_database(home / "traces.db")
    assert audit.rebuild(db, uri).text == editor.texts[uri]


def test_a_killed_worker_is_no_repack_fault(q4_0: Path, tmp_path: Path) -> None:
    """SIGKILL comes from outside (a user, the out-of-memory killer): the kernels stay."""
    import signal

    assert is_fault(-signal.SIGSEGV) and is_fault(-signal.SIGABRT)
    assert not is_fault(-signal.SIGKILL) and not is_fault(-signal.SIGTERM) and not is_fault(1)
    faults = faults_path(tmp_path / "home")
    worker = WorkerSource(q4_0, threads=1, faults=faults)
    try:
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _wait_restarted(worker, pid)
        assert worker.describe()["repack"]["on"] is True
    finally:
        worker.close()
    assert not faults.exists()


def test_a_record_belongs_to_one_model_file(q4_0: Path, tmp_path: Path) -> None:
    faults = faults_path(tmp_path / "home")
    FaultRecords(faults).add(q4_0, "killed by SIGSEGV while loading it")
    assert FaultRecords(faults).get(q4_0) is not None
    other = tmp_path / "other.gguf"
    other.write_bytes(q4_0.read_bytes())
    assert FaultRecords(faults).get(other) is None
    assert oct(faults.parent.stat().st_mode & 0o777) == "0o700"


def test_auto_repacks_only_the_types_measured_faster(q4_0: Path, tiny_gguf: Path) -> None:
    """The header read agrees with the gguf package; the shipped model is not repacked."""
    import gguf

    shipped = Path(__file__).resolve().parents[2] / "models" / "goldiff-default-Q6_K.gguf"
    for model in (q4_0, tiny_gguf, shipped):
        field = gguf.GGUFReader(str(model)).get_field("general.file_type")
        assert field is not None
        assert file_type(model) == int(field.parts[field.data[0]][0])
    assert worth_repacking(q4_0)
    assert not worth_repacking(tiny_gguf) and not worth_repacking(shipped)
    plain = WorkerSource(tiny_gguf, threads=1)
    try:
        info = plain.describe()
    finally:
        plain.close()
    assert info["repack"]["on"] is False and "measured no faster" in info["repackMode"]
