"""Training loop: pretrain from scratch on FIM code, or fine-tune (full or LoRA) on gold.

One function, `train`, reads top to bottom as nanoGPT's train.py does: set up devices and
seeds, load data, build or load the model, optionally wrap it in LoRA, build the optimizer,
resume from the last checkpoint if there is one, then loop: learning-rate schedule, gradient
accumulation, clipping, a step, a progress bar with loss and tokens/s, periodic validation and
checkpoints. It runs under `accelerate launch` or `torchrun` unchanged, and on a single CPU
without any accelerate configuration: each of N processes takes its slice of one global
batch drawn from (seed, step), and its loss is its share of that batch's mean, so N
processes with batch B each train exactly as one process with batch N*B (up to the order
of floating-point sums), and a checkpoint resumes on any number of processes. Checkpoints
(model, optimizer, step, RNG state) are written atomically every ``checkpoint_interval``
steps and when the run is stopped by SIGTERM or Ctrl-C, and a run started again in the same
folder continues exactly where it left off.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from goldiff.distill import data as data_mod
from goldiff.distill.config import TrainConfig
from goldiff.distill.model import build_model, count_parameters, load_model, lora_config
from goldiff.distill.tokenizer import load_tokenizer
from goldiff.errors import ConfigError, NotEnoughDataError
from goldiff.export import load_rows

CHECKPOINT = "checkpoint.pt"
FINAL = "final"


@dataclass
class TrainResult:
    out_dir: str
    final_dir: str | None  # None when the run was interrupted before the end
    steps: int
    tokens_seen: int
    train_loss: float
    val_loss: float | None
    elapsed_s: float
    tokens_per_s: float
    parameters: int
    trainable_parameters: int
    interrupted: bool
    best_step: int = 0  # the step whose weights were kept (the last, unless keep_best chose one)


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    corpus_dir: str | Path | None = None,
    sft_path: str | Path | None = None,
    tokenizer_path: str | Path | None = None,
    progress: bool = True,
    on_checkpoint: Callable[[Any, int], None] | None = None,
) -> TrainResult:
    """Train per ``config`` into ``out_dir``; resume if ``out_dir`` holds a checkpoint.

    Exactly one of ``corpus_dir`` (packed ``train.bin``/``val.bin`` from
    `data.pack_corpus`) and ``sft_path`` (an export's JSONL or Parquet rows, which needs
    ``tokenizer_path``) says what to train on.
    """
    from accelerate import Accelerator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # ---- devices, precision and seeds
    if config.threads:
        torch.set_num_threads(config.threads)
    use_cuda = torch.cuda.is_available()
    precision = config.dtype if config.dtype != "auto" else ("bf16" if use_cuda else "fp32")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"dtype must be auto, fp32 or bf16, not {config.dtype!r}.")
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # One process: forget the settings an earlier trainer in this process left (the
        # preference stage's TRL trainer, an earlier distill with another precision);
        # accelerate otherwise refuses new ones.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no", cpu=not use_cuda)
    rank, world = accelerator.process_index, accelerator.num_processes
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)
    torch.manual_seed(config.seed)
    if use_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # ---- data
    batches: Any
    val_batches: Any
    if corpus_dir is not None:
        corpus = Path(corpus_dir)
        batches = data_mod.TokenWindows(
            corpus / "train.bin", config.seq_len, split="train", needed=config.batch_size
        )
        val_batches = data_mod.TokenWindows(corpus / "val.bin", config.seq_len, split="val")
    else:
        tokenizer = load_tokenizer(tokenizer_path)  # type: ignore[arg-type]
        rows = load_rows(Path(sft_path))  # type: ignore[arg-type]
        if len(rows) < config.min_rows:
            raise NotEnoughDataError(
                f"{sft_path} holds {len(rows)} SFT row(s); at least {config.min_rows} are needed "
                "to train. Keep using Goldiff (or replay a repository's history with "
                "`goldiff replay`) and export again."
            )
        # Validation watches the gold alone: the rows marked for it (the newest, see
        # pipeline.validation_cutoff), else a repeatable share; the workspace's code all trains.
        gold = [r for r in rows if "completion" in r]
        val_rows = [r for r in gold if r.get("split") == "val"]
        if val_rows:
            train_rows = [r for r in gold if r.get("split") != "val"]
        else:
            train_rows, val_rows = data_mod.split_rows(gold, config.val_fraction)
        train_rows += [r for r in rows if "completion" not in r]
        eos = data_mod.SpecialIds.of(tokenizer, fim=False).eos

        def encode(part: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
            shape = (config.sft_prompt, config.sft_heal)
            return [data_mod.encode_sft_row(r, tokenizer, config.seq_len, *shape) for r in part]

        batches = data_mod.SFTRows(encode(train_rows), eos)
        val_batches = data_mod.SFTRows(encode(val_rows), eos)

    # ---- model
    model: Any = load_model(config.init_from) if config.init_from else build_model(config)
    vocab = model.config.vocab_size
    if config.lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(config))
    parameters = count_parameters(model)
    trainable = count_parameters(model, trainable_only=True)

    # ---- optimizer: decay matrices only; norms, biases and (tied) embeddings' scale stay free
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
        fused=use_cuda,
    )

    # ---- resume
    start_step, tokens_seen, max_steps = 0, 0, config.max_steps
    train_loss, val_loss, earlier_s = math.nan, None, 0.0  # carried over by a resume
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"], strict=not config.lora)
        optimizer.load_state_dict(state["optimizer"])
        start_step, tokens_seen = state["step"], state["tokens_seen"]
        if config.time_budget_s:  # keep the length the budget fitted; else the config decides
            max_steps = state.get("max_steps", max_steps)
        train_loss, val_loss = state.get("train_loss", math.nan), state.get("val_loss")
        earlier_s = state.get("elapsed_s", 0.0)
        _set_rng_state(state["rng"])
    model, optimizer = accelerator.prepare(model, optimizer)
    if config.compile:
        model = torch.compile(model)

    # ---- stop cleanly on SIGTERM / Ctrl-C: finish the step, write a checkpoint, return
    stop = {"requested": False}
    with _stop_signals(stop):
        bar = None
        if progress and accelerator.is_main_process:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_steps, initial=start_step, unit="step", dynamic_ncols=True)
        started = time.perf_counter()
        window_start, window_tokens = started, 0
        # Steps after which a time budget fixes max_steps: once early, once when warm.
        calibrate_at = (start_step + 10, start_step + 110)
        step = start_step
        # keep_best: the weights of the lowest validation loss so far, the start included,
        # so a fine-tune that only gets worse ends where it began (and says so: best_step 0).
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        if config.keep_best and start_step == 0:
            start_val = _evaluate(model, val_batches, config, vocab, accelerator)
            if start_val is not None:
                best = (start_val, 0, _weights(accelerator.unwrap_model(model)))
                _log(out, accelerator, step=0, train_loss=None, val_loss=start_val, tokens_seen=0)
        while step < max_steps:
            lr = _learning_rate(config, step, max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.train()
            loss_sum = torch.zeros((), device=accelerator.device)
            for micro in range(config.grad_accum):
                # Each process takes its slice of one global batch, and its loss is its
                # share of the global mean (summed over its tokens, divided by the global
                # count): the averaged gradients are then exactly one process's gradient on
                # the whole batch, so N processes train as one does with the same global batch.
                batch = batches.batch(config.batch_size, config.seed, step, micro, rank=rank, world=world)
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                sync = micro == config.grad_accum - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(model):
                    share = _loss_share(model, batch, vocab) / config.grad_accum
                    accelerator.backward(share * world)  # DDP averages over the world
                loss_sum += share.detach()
                window_tokens += int(batch["input_ids"].numel()) * world
            if config.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_loss = float(accelerator.reduce(loss_sum, "sum").item())
            tokens_seen += config.tokens_per_step * world

            if config.time_budget_s and step in calibrate_at:
                # Fit the run (and its cosine schedule) to the wall time it was given.
                per_step = (time.perf_counter() - started) / (step - start_step)
                fitted = start_step + int(config.time_budget_s / per_step * 0.97)
                max_steps = max(step + 1, min(config.max_steps, fitted))
                if bar is not None:
                    bar.total = max_steps
            if step % config.log_interval == 0 or step == max_steps:
                now = time.perf_counter()
                rate = window_tokens / max(now - window_start, 1e-9)
                window_start, window_tokens = now, 0
                if bar is not None:
                    bar.set_postfix(loss=f"{train_loss:.3f}", tok_s=f"{rate:,.0f}", lr=f"{lr:.2e}")
            if bar is not None:
                bar.update(1)
            if step % config.eval_interval == 0 or step == max_steps:
                val_loss = _evaluate(model, val_batches, config, vocab, accelerator)
                if config.keep_best and val_loss is not None and (best is None or val_loss < best[0]):
                    best = (val_loss, step, _weights(accelerator.unwrap_model(model)))
                _log(
                    out,
                    accelerator,
                    step=step,
                    train_loss=train_loss,
                    val_loss=val_loss,
                    tokens_seen=tokens_seen,
                    elapsed_s=time.perf_counter() - started,
                )
            if stop["requested"] or step % config.checkpoint_interval == 0 or step == max_steps:
                _save_checkpoint(
                    out,
                    accelerator,
                    model,
                    optimizer,
                    config,
                    step=step,
                    tokens_seen=tokens_seen,
                    max_steps=max_steps,
                    train_loss=train_loss,
                    val_loss=val_loss,
                    elapsed_s=earlier_s + time.perf_counter() - started,
                )
                if on_checkpoint is not None and accelerator.is_main_process:
                    on_checkpoint(accelerator.unwrap_model(model), step)
            if stop["requested"]:
                break
        if bar is not None:
            bar.close()

    session_s = time.perf_counter() - started
    elapsed = earlier_s + session_s
    interrupted = step < max_steps
    final_dir = None
    best_step = step
    if best is not None and not interrupted:
        val_loss, best_step = best[0], best[1]
        accelerator.unwrap_model(model).load_state_dict(best[2])
    if not interrupted and accelerator.is_main_process:
        final_dir = str(_save_final(out, accelerator.unwrap_model(model), config, tokenizer_path))
    result = TrainResult(
        out_dir=str(out),
        final_dir=final_dir,
        steps=step,
        tokens_seen=tokens_seen,
        train_loss=train_loss,
        val_loss=val_loss,
        elapsed_s=elapsed,
        tokens_per_s=(step - start_step) * config.tokens_per_step * world / max(session_s, 1e-9),
        parameters=parameters,
        trainable_parameters=trainable,
        interrupted=interrupted,
        best_step=best_step,
    )
    if accelerator.is_main_process:
        (out / "result.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
    if world > 1:
        # Tear the process group down here: left to the interpreter's exit, gloo aborts
        # the process ("terminate called without an active exception"). Meet first: rank 0
        # is still writing the final model, and a peer that tears down alone can leave
        # both waiting on each other for ever (seen about one run in four).
        accelerator.wait_for_everyone()
        accelerator.end_training()
    return result


# --------------------------------------------------------------------------- pieces


def _loss(model: Any, batch: dict[str, torch.Tensor], vocab: int, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over labelled positions (labels are already shifted).

    Only positions that some row labels are projected onto the vocabulary: a gold row
    labels just its answer, and projecting every prompt position (49k logits each for
    SmolLM2) took two fifths of a LoRA distill on 2 cores (16 steps: 588 s, now 355 s).
    """
    labels = batch["labels"]
    keep = (labels != data_mod.IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    if len(keep) == labels.shape[1]:
        keep_arg: int | torch.Tensor = 0  # every position (pretraining windows): no gather
    else:
        keep_arg, labels = keep, labels[:, keep]
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch.get("attention_mask")}
    logits = model(**inputs, logits_to_keep=keep_arg).logits
    return F.cross_entropy(
        logits.float().reshape(-1, vocab),
        labels.reshape(-1),
        ignore_index=data_mod.IGNORE_INDEX,
        reduction=reduction,
    )


def _loss_share(model: Any, batch: dict[str, torch.Tensor], vocab: int) -> torch.Tensor:
    """This process's part of the global batch's mean cross-entropy (see the loop)."""
    return _loss(model, batch, vocab, "sum") / batch["label_count"].clamp(min=1)


@torch.no_grad()
def heldout_loss(
    model_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    tokenizer_path: str | Path,
    seq_len: int,
    prompt: str,
    heal: bool,
) -> float | None:
    """Mean loss per labelled token of the model in `model_dir` on `rows` (None: no rows).

    A fine-tune must not come out worse than its base: `goldiff distill` measures both on rows
    training never saw (the export's time-split test rows), encoded as training encodes them
    in the model's serving prompt shape, and refuses to promote a fine-tune that did not
    lower it.
    """
    if not rows:
        return None
    tokenizer = load_tokenizer(tokenizer_path)
    encoded = [data_mod.encode_sft_row(dict(r), tokenizer, seq_len, prompt, heal) for r in rows]
    batches = data_mod.SFTRows(encoded, data_mod.SpecialIds.of(tokenizer, fim=False).eos)
    model = load_model(model_dir)
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(encoded), 8):
        batch = batches.collate(encoded[start : start + 8])
        total += float(_loss(model, batch, model.config.vocab_size, "sum"))
        count += int((batch["labels"] != data_mod.IGNORE_INDEX).sum())
    return total / count if count else None


def _learning_rate(config: TrainConfig, step: int, max_steps: int) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio of the peak at max_steps."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    span = max(1, max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.learning_rate * config.min_lr_ratio
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (config.learning_rate - floor)


@torch.no_grad()
def _evaluate(model: Any, batches: Any, config: TrainConfig, vocab: int, accelerator: Any) -> float | None:
    if len(batches) == 0:
        return None
    model.eval()
    total = torch.zeros((), device=accelerator.device)
    rank, world = accelerator.process_index, accelerator.num_processes
    for i in range(config.eval_batches):
        # A fixed set of validation batches (step -1), so successive losses compare; each
        # process evaluates its slice of them, as in training.
        batch = batches.batch(config.batch_size, config.seed, -1, i, rank=rank, world=world)
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        total += _loss_share(model, batch, vocab)
    model.train()
    return float(accelerator.reduce(total, "sum").item()) / config.eval_batches


def _save_checkpoint(
    out: Path,
    accelerator: Any,
    model: Any,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    **progress: Any,
) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    unwrapped = accelerator.unwrap_model(model)
    state_dict = unwrapped.state_dict()
    if config.lora:  # the frozen base comes from init_from; keep the checkpoint small
        trainable = {n for n, p in unwrapped.named_parameters() if p.requires_grad}
        state_dict = {k: v for k, v in state_dict.items() if k in trainable}
    state = {
        "model": state_dict,
        "optimizer": optimizer.state_dict(),
        "rng": _get_rng_state(),
        "config": config.to_dict(),
        **progress,
    }
    # Write then rename: a kill mid-write leaves the previous checkpoint intact.
    tmp = out / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / CHECKPOINT)


def _save_final(out: Path, model: Any, config: TrainConfig, tokenizer_path: str | Path | None) -> Path:
    final = out / FINAL
    tmp = out / (FINAL + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # a LoRA run saves only its adapter (peft's format)
    if tokenizer_path is not None:
        shutil.copy(tokenizer_path, tmp / "tokenizer.json")
    (tmp / "goldiff_train.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _log(out: Path, accelerator: Any, **fields: Any) -> None:
    if accelerator.is_main_process:
        with (out / "log.jsonl").open("a") as f:
            f.write(json.dumps(fields) + "\n")


def _weights(model: Any) -> dict[str, torch.Tensor]:
    """A copy of the model's weights in memory (a small model's: tens of MB)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _get_rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def _stop_signals(stop: dict[str, bool]) -> Iterator[None]:
    """Turn the first SIGTERM/SIGINT into a polite stop; a second one interrupts at once."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
