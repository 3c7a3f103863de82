"""The one way Goldiff loads a GGUF through llama-cpp-python: `load_llama`.

llama.cpp built natively on a CPU with AMX adds an "extra buffer type" and repacks weights
into it while loading; for some tensor types (a Q6_K `token_embd.weight`) that repack
faults in libggml-cpu.so and the process dies with SIGSEGV. The model parameter
`use_extra_bufts = False` keeps every weight in the plain CPU buffer: the same results on
every CPU, at the cost of the repacked matmul kernels. llama-cpp-python 0.3.36 has no
`Llama(...)` argument for it: `Llama.__init__` takes `llama_model_default_params()` and sets
the fields it knows, so `load_llama` hands it defaults with extra buffer types already off.

Every model load in Goldiff (the local source and its worker, evaluation, the parity
check, the demo, tests and benchmarks) goes through here. Importing this module does not
import llama_cpp; calling `load_llama` does.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldiff.errors import ModelLoadError

if TYPE_CHECKING:
    import llama_cpp

# Guards the moment the defaults function is swapped, so two threads loading at once
# cannot restore each other's swap out of order.
_LOAD_LOCK = threading.Lock()


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


def safe_model_params() -> Any:
    """llama.cpp's default model parameters with extra (repacking) buffer types off."""
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.use_extra_bufts = False
    return params


def load_llama(model_path: str, **kwargs: Any) -> llama_cpp.Llama:
    """`llama_cpp.Llama(model_path=..., **kwargs)` loaded with `safe_model_params()`."""
    import llama_cpp
    import llama_cpp.llama_cpp as lowlevel_module

    # The module `Llama.__init__` takes its defaults from (llama.py imports it as `llama_cpp`).
    lowlevel: Any = lowlevel_module
    with _LOAD_LOCK:
        original = lowlevel.llama_model_default_params

        def defaults() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        lowlevel.llama_model_default_params = defaults
        try:
            llm = llama_cpp.Llama(model_path=model_path, **kwargs)
        finally:
            lowlevel.llama_model_default_params = original
    if llm.model_params.use_extra_bufts:  # pragma: no cover - a llama-cpp-python that changed
        llm.close()
        raise RuntimeError("llama-cpp-python ignored use_extra_bufts=False; Goldiff cannot load safely")
    return llm
