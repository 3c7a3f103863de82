"""Shrink an exported F32/F16 GGUF with llama.cpp's own quantizer.

``llama_cpp.llama_model_quantize`` with llama.cpp's default parameters, so the result is
what the ``llama-quantize`` tool would write. K-quants (``Q4_K_M``) work on rows of 256
values: a tensor whose row size is not a multiple of 256 silently falls back to another
type, so the project's models use widths in multiples of 256. Quantizing a small model
takes well under a second. Afterwards run :func:`goldiff.distill.parity.check_parity` with
the tolerance for the type (``parity.DEFAULT_TOLERANCES``).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

from goldiff.errors import QuantizeError

#: llama.cpp's ``llama_ftype`` values for the types Goldiff offers.
QUANT_TYPES: dict[str, int] = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}


@dataclass(frozen=True)
class QuantizeResult:
    """What :func:`quantize` wrote."""

    dst: Path
    qtype: str
    src_bytes: int
    dst_bytes: int


def quantize(
    src: str | Path,
    dst: str | Path,
    qtype: str = "Q8_0",
    *,
    n_threads: int | None = None,
) -> QuantizeResult:
    """Quantize the model GGUF ``src`` into ``dst`` as ``qtype``; return both sizes.

    ``n_threads`` defaults to llama.cpp's choice (all cores). Raises :class:`QuantizeError`
    for an unknown type, a missing or unreadable input, or a failed write; ``dst`` is then
    removed rather than left half-written.
    """
    import llama_cpp

    key = qtype.upper()
    if key not in QUANT_TYPES:
        raise QuantizeError(f"unknown quantization {qtype!r}; use one of {', '.join(QUANT_TYPES)}")
    src_path, dst_path = Path(src), Path(dst)
    if not src_path.is_file():
        raise QuantizeError(f"cannot quantize {src_path}: no such file")
    if src_path.resolve() == dst_path.resolve():
        raise QuantizeError("the quantized file must not overwrite its source; pick another name")
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[key]
    params.nthread = n_threads if n_threads is not None else 0
    status = llama_cpp.llama_model_quantize(
        os.fsencode(src_path), os.fsencode(dst_path), ctypes.byref(params)
    )
    if status != 0 or not dst_path.is_file():
        dst_path.unlink(missing_ok=True)
        raise QuantizeError(
            f"llama.cpp failed to quantize {src_path} to {key} (status {status}); check that "
            "it is a model GGUF (not an adapter) exported as F32 or F16"
        )
    return QuantizeResult(dst_path, key, src_path.stat().st_size, dst_path.stat().st_size)
