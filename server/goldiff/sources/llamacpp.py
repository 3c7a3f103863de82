"""The one way Goldiff loads a GGUF through llama-cpp-python: `load_llama`.

llama.cpp adds "extra buffer types" on CPUs it has faster kernels for and repacks weights
into them while loading: CPU_REPACK (Q4_0, IQ4_NL, Q4_K on AVX2 and up) and, built natively on
a CPU with AMX, AMX. For some tensor types that repack faults (an AMX repack of a Q6_K
`token_embd.weight` dies with SIGSEGV in libggml-cpu.so). The model parameter
`use_extra_bufts = False` keeps every weight in the plain CPU buffer: the same results on
every CPU, at the cost of the repacked matmul kernels. llama-cpp-python 0.3.36 has no
`Llama(...)` argument for it: `Llama.__init__` takes `llama_model_default_params()` and sets
the fields it knows, so `load_llama` hands it defaults with extra buffer types already off.

`load_llama` never repacks: its callers run llama.cpp in their own process (the parity check,
quantization, the CLI, tests), which a fault would end. Only the engine worker (`worker.py`),
whose death the server survives and answers by loading again without repacking
(`repack.py`), asks `load_llama_with` for `repack=True`, which also says what llama.cpp
repacked (`Repack`), read from llama.cpp's own log while it loads.

Every model load in Goldiff (the local source and its worker, evaluation, the parity
check, the demo, tests and benchmarks) goes through here. Importing this module does not
import llama_cpp; calling `load_llama` does.
"""

from __future__ import annotations

import ctypes
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldiff.errors import ModelLoadError

if TYPE_CHECKING:
    import llama_cpp

# Guards the moment the defaults function is swapped, so two threads loading at once
# cannot restore each other's swap out of order.
_LOAD_LOCK = threading.Lock()
# The log callback in force while a repacking load runs. Kept referenced at module level: a
# ctypes callback collected while llama.cpp still holds its pointer would crash the process.
_listener: Any = None


def check_gguf(path: Path, what: str = "model") -> None:
    """Fail with a message a user can act on before llama.cpp fails with a vague one."""
    if not path.exists():
        raise ModelLoadError(
            f"the local {what} {path} does not exist. Check goldiff.local.{what} or `goldiff models list`."
        )
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the local {what} {path}: {exc}") from exc
    if magic != b"GGUF":
        raise ModelLoadError(
            f"{path} is not a GGUF file (it may be truncated or corrupt); re-download or re-export it"
        )


def checked_model(
    model_path: str | Path, adapter_path: str | Path | None, name: str | None
) -> tuple[Path, Path | None, str]:
    """The model and adapter paths, checked as GGUF files, and the name the model goes by.

    The in-process source and its worker process both start from these, so a bad path
    fails the same way, and a model is named the same way, whichever serves it.
    """
    model = Path(model_path)
    adapter = Path(adapter_path) if adapter_path else None
    check_gguf(model)
    if adapter is not None:
        check_gguf(adapter, "adapter")
    return model, adapter, name or model.stem + (f"+{adapter.stem}" if adapter else "")


@dataclass(frozen=True)
class Repack:
    """How a model was loaded: with extra buffer types allowed, and what llama.cpp repacked."""

    on: bool  # loaded with llama.cpp's extra (repacking) buffer types allowed
    tensors: int = 0  # weights llama.cpp repacked into them
    buffers: tuple[str, ...] = ()  # the extra buffer types holding weights (CPU_REPACK, AMX)

    def as_dict(self) -> dict[str, Any]:
        return {"on": self.on, "tensors": self.tensors, "buffers": list(self.buffers)}


def load_llama(model_path: str, **kwargs: Any) -> llama_cpp.Llama:
    """`llama_cpp.Llama(model_path=..., **kwargs)` with extra (repacking) buffer types off."""
    return load_llama_with(model_path, repack=False, **kwargs)[0]


def load_llama_with(model_path: str, *, repack: bool, **kwargs: Any) -> tuple[llama_cpp.Llama, Repack]:
    """`load_llama`, or with llama.cpp's own default (extra buffer types on) for `repack=True`,
    and what llama.cpp repacked while loading (nothing when `repack` is off)."""
    global _listener
    import llama_cpp
    import llama_cpp.llama_cpp as lowlevel_module
    from llama_cpp import _logger

    # The module `Llama.__init__` takes its defaults from (llama.py imports it as `llama_cpp`).
    lowlevel: Any = lowlevel_module
    lines: list[str] = []
    with _LOAD_LOCK:
        original = lowlevel.llama_model_default_params

        def defaults() -> Any:
            params = original()
            params.use_extra_bufts = repack
            return params

        lowlevel.llama_model_default_params = defaults
        if repack:
            # llama.cpp's log goes to `lines`, and on to llama-cpp-python's own callback.
            forward = _logger.llama_log_callback

            @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
            def listen(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
                lines.append(text.decode("utf-8", "replace"))
                forward(level, text, user_data)

            _listener = listen
            llama_cpp.llama_log_set(listen, ctypes.c_void_p(0))
        try:
            llm = llama_cpp.Llama(model_path=model_path, **kwargs)
        finally:
            lowlevel.llama_model_default_params = original
            if repack:
                llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    if llm.model_params.use_extra_bufts != repack:  # pragma: no cover - a llama-cpp-python that changed
        llm.close()
        raise RuntimeError("llama-cpp-python ignored use_extra_bufts; Goldiff cannot load safely")
    if not repack:
        return llm, Repack(on=False)
    text = "".join(lines)
    # ggml logs "repack: repack tensor blk.0.attn_q.weight with q4_0_8x8" (CPU_REPACK) or
    # "amx repack tensor ..." per weight, and llama.cpp "  CPU_REPACK model buffer size = ..."
    # per buffer type that holds weights.
    names = re.findall(r"(\w+) model buffer size", text)
    buffers = tuple(dict.fromkeys(n for n in names if n not in ("CPU", "CPU_Mapped")))
    return llm, Repack(on=True, tensors=text.count("repack tensor"), buffers=buffers)
