"""Check that an exported GGUF computes what the torch model it came from computes.

An export can load in llama.cpp and still be wrong (a missing bias, an unpermuted Q/K, a
tokenizer flag), so every export is followed by this check: the same token ids go through
torch and through llama.cpp (``logits_all=True``, the only way ``Llama.scores`` is filled),
and the logits at every position are compared: the largest absolute difference, and how
often both pick the same next token. Prompts given as text are tokenized by llama.cpp
itself, so both sides see identical ids (tokenizer agreement is tested separately).
Outside tolerance, :class:`ParityError` is raised with the figures.

llama.cpp runs with an F32 KV cache here, so an F32 export matches torch to float noise and
any larger difference is an export bug. F16 and quantized weights perturb the logits in
proportion to their spread, so the limit is on max |diff| divided by the standard deviation
of torch's logits (``max_rel_diff``), which reads the same on a random test model and on a
trained one. Measured on the project's trained 5M model (logit std ~3): F16 max |diff|
0.004, Q8_0 0.10, Q4_K_M 0.36; on random width-256 test models: F16 0.15% of the std,
Q8_0 4%, Q4_K_M 18%. :data:`DEFAULT_TOLERANCES` leaves headroom over both, while the
argmax agreement catches mapping bugs (an unpermuted Q/K gave 48%, dropped biases 93%).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from goldiff.errors import ParityError

__all__ = ["DEFAULT_TOLERANCES", "ParityError", "ParityReport", "Tolerance", "check_parity"]


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted max |logit diff| / std(torch logits), smallest argmax agreement."""

    max_rel_diff: float
    min_argmax_agreement: float


#: Per output type; quantized types trade logit precision for size.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "F32": Tolerance(0.001, 1.0),
    "F16": Tolerance(0.01, 0.95),
    # A distilled 30M model's Q8_0 measured 10.3% (argmax 100%) in `goldiff demo`: single
    # outlier positions dominate max |diff|, while a wrong export shows in argmax (48-93%).
    "Q8_0": Tolerance(0.15, 0.9),
    "Q6_K": Tolerance(0.15, 0.85),
    **dict.fromkeys(("Q5_K_M", "Q5_K_S", "Q5_0", "Q5_1"), Tolerance(0.2, 0.85)),
    # The legacy 4-bit types (Q4_0, Q4_1), as pulled bases ship them: held to the 4-bit K limits.
    **dict.fromkeys(("Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1"), Tolerance(0.3, 0.8)),
}


@dataclass(frozen=True)
class ParityReport:
    """Figures from one parity check, over every position of every prompt."""

    gguf_path: Path
    n_prompts: int
    n_positions: int
    max_abs_diff: float
    mean_abs_diff: float
    logit_std: float
    argmax_agreement: float
    tolerance: Tolerance

    @property
    def max_rel_diff(self) -> float:
        """``max_abs_diff`` in units of the torch logits' standard deviation."""
        return self.max_abs_diff / self.logit_std if self.logit_std > 0 else float("inf")

    @property
    def passed(self) -> bool:
        return (
            self.max_rel_diff <= self.tolerance.max_rel_diff
            and self.argmax_agreement >= self.tolerance.min_argmax_agreement
        )

    def summary(self) -> str:
        return (
            f"{self.gguf_path.name}: max |diff| {self.max_abs_diff:.4f} = "
            f"{self.max_rel_diff:.2%} of the logits' std {self.logit_std:.2f} "
            f"(limit {self.tolerance.max_rel_diff:.2%}), argmax agreement "
            f"{self.argmax_agreement:.1%} (limit {self.tolerance.min_argmax_agreement:.0%}) "
            f"over {self.n_positions} positions of {self.n_prompts} prompts"
        )


def _resolve_tolerance(tolerance: Tolerance | str | float) -> Tolerance:
    if isinstance(tolerance, Tolerance):
        return tolerance
    if isinstance(tolerance, str):
        try:
            return DEFAULT_TOLERANCES[tolerance.upper()]
        except KeyError:
            raise ValueError(
                f"no default tolerance for {tolerance!r}; use one of {sorted(DEFAULT_TOLERANCES)}"
            ) from None
    return Tolerance(float(tolerance), 1.0)


def check_parity(
    hf_model: Any,
    gguf_path: str | Path,
    prompts: Sequence[str | Sequence[int]],
    tolerance: Tolerance | str | float = "F32",
    *,
    lora_path: str | Path | None = None,
    raise_on_failure: bool = True,
) -> ParityReport:
    """Compare ``hf_model`` (torch, transformers or peft) with the GGUF on ``prompts``.

    ``tolerance`` is a :class:`Tolerance`, a type name from :data:`DEFAULT_TOLERANCES`
    (``"F16"``, ``"Q8_0"``, ...) or a bare ``max_rel_diff`` (then argmax must agree
    everywhere).
    With ``lora_path`` the GGUF is loaded with that adapter, to check an adapter export
    against the peft model. Raises :class:`ParityError` outside tolerance unless
    ``raise_on_failure`` is false; the report is returned either way.
    """
    import llama_cpp
    import torch

    from goldiff.sources.llamacpp import load_llama

    limits = _resolve_tolerance(tolerance)
    path = Path(gguf_path)
    if not prompts:
        raise ValueError("check_parity needs at least one prompt")
    if not path.is_file():
        raise ParityError(f"cannot check {path}: no such file")
    try:
        llm = load_llama(
            model_path=str(path),
            lora_path=str(lora_path) if lora_path is not None else None,
            n_ctx=512,
            n_batch=512,
            logits_all=True,
            # An F32 KV cache, so the figures measure the export, not the cache's rounding.
            type_k=llama_cpp.GGML_TYPE_F32,
            type_v=llama_cpp.GGML_TYPE_F32,
            verbose=False,
        )
    except (ValueError, RuntimeError):  # what llama-cpp-python raises when it refuses a file
        raise ParityError(
            f"llama.cpp cannot load {path}"
            + (f" with adapter {lora_path}" if lora_path is not None else "")
            + "; the export is broken (a tensor llama.cpp does not expect, or a shape it "
            "rejects): load it with llama_cpp.Llama(verbose=True) to see which"
        ) from None
    device = next(hf_model.parameters()).device
    was_training = hf_model.training
    hf_model.eval()
    try:
        token_ids = [
            llm.tokenize(p.encode("utf-8"), add_bos=False, special=False) if isinstance(p, str) else list(p)
            for p in prompts
        ]
        if any(not ids or len(ids) > 512 for ids in token_ids):
            raise ValueError("each parity prompt must be 1 to 512 tokens long")
        diffs: list[npt.NDArray[np.float32]] = []
        reference: list[npt.NDArray[np.float32]] = []
        agree = 0
        for ids in token_ids:
            llm.reset()  # type: ignore[no-untyped-call]
            llm.eval(ids)
            ours = np.asarray(llm.scores[: len(ids)], dtype=np.float32)
            with torch.no_grad():
                logits = hf_model(input_ids=torch.tensor([list(ids)], device=device)).logits[0]
            theirs = logits.to(dtype=torch.float32, device="cpu").numpy()
            if theirs.shape != ours.shape:
                raise ParityError(
                    f"{path.name} has {ours.shape[1]} logits per token but the model has "
                    f"{theirs.shape[1]}; the GGUF was not exported from this model"
                )
            diffs.append(np.abs(ours - theirs))
            reference.append(theirs)
            agree += int((ours.argmax(axis=1) == theirs.argmax(axis=1)).sum())
    finally:
        llm.close()
        hf_model.train(was_training)
    all_diffs = np.concatenate(diffs)
    n_positions = sum(len(ids) for ids in token_ids)
    report = ParityReport(
        gguf_path=path,
        n_prompts=len(token_ids),
        n_positions=n_positions,
        max_abs_diff=float(all_diffs.max()),
        mean_abs_diff=float(all_diffs.mean()),
        logit_std=float(np.concatenate(reference).std()),
        argmax_agreement=agree / n_positions,
        tolerance=limits,
    )
    if raise_on_failure and not report.passed:
        raise ParityError(
            f"exported model disagrees with torch: {report.summary()}; the export is wrong "
            "(architecture, tensor mapping or tokenizer), do not serve it"
        )
    return report
