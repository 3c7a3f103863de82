"""Models load with llama.cpp's extra buffer types off, and that reaches llama.cpp itself.

On CPUs with AMX, llama.cpp repacks weights into an "AMX" extra buffer type and crashed
(SIGSEGV) doing so for Q6_K tensors. The same mechanism repacks Q4_K weights into
"CPU_REPACK" on any x86 CPU with AVX2, so that is what this machine can show: loaded the
plain way, llama.cpp reports a CPU_REPACK buffer; loaded through `load_llama`, it reports
no extra buffer at all, whatever the CPU.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from goldiff.distill.quantize import quantize
from goldiff.sources.llamacpp import load_llama

LOAD = textwrap.dedent(
    """
    import sys
    import llama_cpp
    from goldiff.sources.llamacpp import load_llama
    path, how = sys.argv[1], sys.argv[2]
    if how == "plain":
        llm = llama_cpp.Llama(model_path=path, n_ctx=128, verbose=True)
    elif how == "repack":
        from goldiff.sources.llamacpp import load_llama_with

        llm, repack = load_llama_with(path, repack=True, n_ctx=128, verbose=False)
        print("REPACK", repack.tensors, ",".join(repack.buffers), file=sys.stderr)
    else:
        llm = load_llama(path, n_ctx=128, verbose=True)
    print("use_extra_bufts", llm.model_params.use_extra_bufts, file=sys.stderr)
    llm.close()
    """
)


def _load_log(path: Path, how: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", LOAD, str(path), how], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stderr


def _extra_buffers(log: str) -> list[str]:
    """The model buffers llama.cpp allocated other than the plain (mapped) CPU ones."""
    lines = [line for line in log.splitlines() if "model buffer size" in line]
    return [line for line in lines if "CPU_Mapped" not in line and " CPU model buffer" not in line]


def test_load_llama_keeps_weights_out_of_extra_buffer_types(tiny_gguf: Path, tmp_path: Path) -> None:
    q4 = quantize(tiny_gguf, tmp_path / "tiny-q4_k_m.gguf", "Q4_K_M").dst
    safe = _load_log(q4, "safe")
    assert "use_extra_bufts False" in safe
    assert _extra_buffers(safe) == [] and "repack tensor" not in safe and "AMX" not in safe
    plain = _load_log(q4, "plain")
    if not _extra_buffers(plain):
        pytest.skip("this CPU has no extra buffer type for Q4_K: nothing to tell apart")
    # The same file, loaded the default way, does get repacked: the parameter is what differs.
    assert "repack tensor" in plain or "AMX" in plain


def test_the_loader_turns_extra_buffer_types_off_for_its_model_only(tiny_gguf: Path) -> None:
    llm = load_llama(str(tiny_gguf), n_ctx=64, verbose=False)
    try:
        assert llm.model_params.use_extra_bufts is False
    finally:
        llm.close()
    # The swap is undone: llama-cpp-python's own defaults are untouched for anyone else.
    import llama_cpp

    assert llama_cpp.llama_model_default_params().use_extra_bufts is True


def test_repack_true_is_llama_cpps_default_load_and_says_what_it_did(tiny_gguf: Path, tmp_path: Path) -> None:
    """In a child process, as in the engine worker: a repacking load may fault on some CPUs."""
    q4 = quantize(tiny_gguf, tmp_path / "tiny-q4_k_m.gguf", "Q4_K_M").dst
    plain = _load_log(q4, "plain")
    repacked = _load_log(q4, "repack")
    assert "use_extra_bufts True" in repacked
    line = next(x for x in repacked.splitlines() if x.startswith("REPACK "))
    _, tensors, buffers = (line + " ").split(" ", 2)
    # The same weights and buffers llama.cpp's own log shows for its default load, read from
    # its log callback even when the load is quiet.
    assert int(tensors) == plain.count("repack tensor")
    expected = [x.split(":", 1)[-1].split("model buffer size")[0].strip() for x in _extra_buffers(plain)]
    assert buffers.strip() == ",".join(expected)
