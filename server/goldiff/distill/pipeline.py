"""`goldiff distill`: the user's own gold → a fine-tuned model, registered and switchable.

One pipeline, shared by the command line, the editor's `goldiff.distill` command and
`goldiff demo`: export the store's gold as sft rows (time-split, so the newest contexts
stay held out), read the base model's weights into torch (the shipped default GGUF is
dequantized when no torch copy lies beside it), fine-tune, export to GGUF with the parity
check, quantize, and register the result with its lineage (base, export id, recipe,
metrics) so `goldiff models use NAME` or the editor's toggle switches to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldiff.distill.workspace import documents_at, text_rows, training_rows, write_rows
from goldiff.errors import ConfigError, NotEnoughDataError
from goldiff.export import ExportOptions, at_commit, export, load_rows
from goldiff.records import iter_events

Say = Callable[[str], None]


@dataclass
class BaseModel:
    gguf: Path  # what the server and the evaluation load
    hf_dir: Path  # the same weights for torch, where fine-tuning starts
    tokenizer: Path  # tokenizer.json


def base_model(gguf: Path | None, work: Path, say: Say = print) -> BaseModel:
    """The base (default: the project's own shipped model) with torch weights to fine-tune from.

    The pretrained default that serves (SmolLM2, llama architecture) is not a base here: the
    GGUF export and parity check speak qwen2, the architecture of Goldiff's own model.
    """
    from goldiff.sources.registry import DEFAULT_MODEL_ENV, default_model_path, own_model_path

    found = gguf or (default_model_path() if os.environ.get(DEFAULT_MODEL_ENV) else own_model_path())
    if found is None or not Path(found).is_file():
        raise ConfigError(
            "no base model found (models/goldiff-default*.gguf). Reinstall Goldiff from a "
            "checkout that has it, run `goldiff bootstrap`, or pass --base PATH."
        )
    found = Path(found)
    # Torch weights and tokenizer may travel next to the GGUF: <stem>-hf/ (bootstrap's output),
    # or lie in the work folder from an earlier (or another process's) read of this GGUF.
    for hf_dir in (found.with_name(found.stem + "-hf"), found.parent / "hf", work / "base-hf"):
        tokenizer = hf_dir / "tokenizer.json"
        if (hf_dir / "config.json").is_file() and tokenizer.is_file():
            if hf_dir == work / "base-hf" and _read_from(hf_dir) != str(found.resolve()):
                continue  # read from another base by an earlier run of this name
            return BaseModel(gguf=found, hf_dir=hf_dir, tokenizer=tokenizer)
    say(f"Reading {found.name} back into torch (dequantized) to fine-tune it...")
    return torch_weights_from_gguf(found, work / "base-hf")


def torch_weights_from_gguf(gguf: Path, out: Path) -> BaseModel:
    """The GGUF's weights (dequantized) and tokenizer as a transformers folder to train from.

    transformers reads GGUF files (qwen2 and llama, tokenizer included); a model loaded that
    way is marked quantized and refuses `save_pretrained`, so its weights go into a fresh
    model of the same config. The tokenizer it rebuilds tokenizes exactly as the GGUF's.
    """
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ConfigError("distilling needs the training extra: pip install 'goldiff[train]'") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError(f"cannot read {gguf} back into torch to fine-tune it: {exc}") from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / READ_FROM).write_text(str(gguf.resolve()) + "\n", encoding="utf-8")
    return BaseModel(gguf=gguf, hf_dir=out, tokenizer=out / "tokenizer.json")


READ_FROM = "goldiff_read_from.txt"  # which GGUF a dequantized base folder was read from


def _read_from(hf_dir: Path) -> str:
    try:
        return (hf_dir / READ_FROM).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@dataclass
class FinetuneOptions:
    recipe: str = "default"  # architecture and tokenizer of the base
    # 40 steps of 8 rows: about one pass over a 60-commit project's gold and code. More
    # (100 steps at 5e-4) lowered the held-out accept proxy (toolz: 26.3% base, 17.5%).
    steps: int = 40  # fine-tuning steps (a 30M model takes seconds a step on 2 cores)
    batch_size: int = 8  # rows per step
    seq_len: int = 256  # tokens per row: a FIM context excerpt plus its gold
    learning_rate: float = 3e-4  # lower than pretraining: adapt, do not forget
    threads: int = 2
    seed: int = 0
    # Q8_0: after a short fine-tune a 30M model's Q4_K_M fell outside the parity tolerance
    # (measured: 55% of the logits' spread against a 30% limit).
    quantize_to: str = "Q8_0"
    # Training rows take the shape the base is served with (its serving profile): a
    # prefix-only model trained on FIM rows is then asked a question it never learned.
    prompt: str | None = None  # None: the base's serving profile decides
    val_fraction: float = 0.1  # gold rows (by id hash) that only watch for overfitting
    evals: int = 6  # validation points; the weights of the best one are kept (the start included)
    workspace_code: bool = True  # also learn the workspace's own code (repository adaptation)
    gold_weight: int = 2  # each gold row counts this many times against the code windows
    # The preference stage after SFT (DPO, `distill/preference.py`): the kept text against
    # the suggestion the developer typed over, once there are this many such pairs. Off by
    # default: on toolz (72 pairs, 20 steps) it lowered the validation loss (2.53 → 2.45)
    # but the held-out accept proxy fell from 23.4% (SFT alone) to 17.0%.
    preference_steps: int = 0
    min_preference_rows: int = 16


def inherit_profile(base: BaseModel, model: Path, prompt: str, heal: bool) -> None:
    """The fine-tune is served the way its base is (and the way it was trained)."""
    from goldiff.sources.profile import load_profile, write_profile

    profile = load_profile(base.gguf)
    write_profile(
        model,
        prompt=prompt,
        heal=heal,
        min_token_prob=profile.min_token_prob,
        context_tokens=profile.context_tokens,
        measured={"why": f"inherited from its base {base.gguf.name}, trained in the same prompt shape"},
    )


class Phases(dict[str, float]):
    """Seconds per phase of a run, reported with its result (the distill benchmark reads it)."""

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - started


def finetune(
    base: BaseModel,
    train_rows: Path,
    work: Path,
    options: FinetuneOptions,
    say: Say = print,
    phases: Phases | None = None,
    preference_rows: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune the base on sft rows (then on preference pairs, if given); export, check
    parity and quantize the result."""
    from goldiff.distill.config import load_recipe
    from goldiff.distill.gguf_export import export_checked, export_lora_checked
    from goldiff.distill.model import load_model
    from goldiff.distill.train import train
    from goldiff.sources.profile import load_profile

    rank, world = processes()
    # How the base is asked when it serves (its profile): prompt mode and token healing.
    profile = load_profile(base.gguf)
    prompt = profile.prompt or "fim"
    heal = profile.heal and prompt == "prefix"
    if options.prompt is not None and options.prompt != prompt:
        prompt, heal = options.prompt, False
    if options.batch_size % world:
        raise ConfigError(
            f"the batch of {options.batch_size} rows cannot be shared by {world} processes; "
            f"use a multiple of {world} (--batch-size)"
        )
    trainer = load_recipe(
        options.recipe,
        init_from=str(base.hf_dir),
        max_steps=options.steps,
        seq_len=options.seq_len,
        # options.batch_size is the global batch: the same command trains the same way on
        # any number of processes (see train.py).
        batch_size=options.batch_size // world,
        learning_rate=options.learning_rate,
        warmup_steps=max(1, options.steps // 10),
        log_interval=max(1, options.steps // 4),
        eval_interval=max(1, options.steps // max(1, options.evals)),
        eval_batches=4,
        checkpoint_interval=options.steps,
        threads=options.threads,
        min_rows=1,
        seed=options.seed,
        sft_prompt=prompt,
        sft_heal=heal,
        val_fraction=options.val_fraction,
        keep_best=True,
    )
    say(f"Fine-tuning the base on the gold for {options.steps} steps ({prompt} prompts)...")
    phases = Phases() if phases is None else phases
    with phases.timed("training"):
        result = train(
            trainer, work / "distill", sft_path=train_rows, tokenizer_path=base.tokenizer, progress=False
        )
    if result.final_dir is None and rank == 0:
        raise KeyboardInterrupt("stopped during training; run the same command again to resume")
    if rank != 0 or result.final_dir is None:  # the first process exports and registers
        return {"steps": result.steps, "processes": world, "phase_seconds": phases}
    say(f"  {result.tokens_seen:,} tokens, loss {result.train_loss:.3f}, {result.tokens_per_s:,.0f} tokens/s")
    if result.best_step == 0:
        say("  No step beat the base on the validation gold: the base's weights are kept.")
    elif result.best_step < result.steps:
        say(f"  Kept step {result.best_step}'s weights: the validation loss rose after it.")
    preference: dict[str, Any] = {}
    if preference_rows and options.preference_steps and result.best_step and not trainer.lora and world == 1:
        with phases.timed("preference"):
            preference = prefer(
                trainer, base, Path(result.final_dir), (train_rows, preference_rows), work, options, say
            )
        result.final_dir = str(preference.get("final_dir") or result.final_dir)
    adapter: dict[str, str] = {}
    qtype: str | None = None
    if result.best_step == 0:
        # The base itself, as it ships: a re-quantized copy of it would only serve it worse.
        gguf, size = base.gguf, base.gguf.stat().st_size
    elif trainer.lora:
        # A LoRA run ships its adapter, served on the base GGUF as it is (and its profile).
        from peft import PeftModel

        say("Exporting the LoRA adapter to GGUF (parity-checked against torch on the base GGUF)...")
        with phases.timed("export"):
            tuned = PeftModel.from_pretrained(load_model(base.hf_dir), str(result.final_dir))
            exported = export_lora_checked(tuned, base.gguf, work / "distilled" / "adapter.gguf")
        gguf, qtype, size = base.gguf, exported.qtype, exported.size_bytes
        adapter = {"adapter": str(exported.path)}
    else:
        say("Exporting to GGUF (parity-checked against torch, quantized)...")
        with phases.timed("export"):
            model = load_model(result.final_dir)
            files = export_checked(
                model,
                base.tokenizer.parent,
                work / "distilled" / "model-F16.gguf",
                quantize_to=(options.quantize_to,),
            )
        # The F16 export and its parity check (loading the weights included), then quantizing.
        phases["quantize"] = sum(f.seconds for f in files[1:])
        phases["export"] -= phases["quantize"]
        final = files[-1]
        inherit_profile(base, final.path, prompt, heal)
        gguf, qtype, size = final.path, final.qtype, final.size_bytes
    return {
        "gguf": str(gguf),
        **adapter,
        "final_dir": str(result.final_dir),  # the torch weights, for the held-out loss
        "kept_base": result.best_step == 0,
        "qtype": qtype,
        "size_bytes": size,
        "best_step": result.best_step,
        "prompt": prompt,
        "heal": heal,
        "steps": result.steps,
        "tokens_seen": result.tokens_seen,
        "train_loss": result.train_loss,
        "val_loss": result.val_loss,
        "tokens_per_s": result.tokens_per_s,
        "train_seconds": result.elapsed_s,
        "processes": world,
        "phase_seconds": phases,
        **({"preference": preference} if preference else {}),
    }


def prefer(
    trainer: Any,
    base: BaseModel,
    sft_dir: Path,
    data: tuple[Path, Path],
    work: Path,
    options: FinetuneOptions,
    say: Say,
) -> dict[str, Any]:
    """DPO from the SFT weights on the developer's preference pairs, kept only if it did not
    make the validation gold less likely (the rows SFT's early stopping watched)."""
    from goldiff.distill.preference import train_preference
    from goldiff.distill.train import heldout_loss

    train_rows, pairs = data
    rows = load_rows(pairs)
    if len(rows) < options.min_preference_rows:
        say(f"No preference stage: {len(rows)} suggestions typed over, {options.min_preference_rows} needed.")
        return {"rows": len(rows), "kept": False}
    say(f"Preference stage (DPO) on {len(rows)} suggestions the developer typed over...")
    config = trainer.replace(max_steps=options.preference_steps, learning_rate=options.learning_rate / 3)
    shape = (trainer.sft_prompt, trainer.sft_heal)
    tuned = train_preference(config, sft_dir, pairs, work / "preference", prompt=shape[0], heal=shape[1])
    val = [r for r in load_rows(train_rows) if r.get("split") == "val"]
    before = heldout_loss(sft_dir, val, base.tokenizer, options.seq_len, *shape)
    after = heldout_loss(tuned.final_dir, val, base.tokenizer, options.seq_len, *shape)
    kept = before is not None and after is not None and after <= before
    if before is None or after is None:
        say("  not kept: there are no validation rows to check it on")
    else:
        verdict = "kept" if kept else "not kept: the validation gold became less likely"
        say(f"  validation loss {before:.3f} (SFT) → {after:.3f} (DPO, {tuned.steps} steps): {verdict}")
    info = {"rows": len(rows), "steps": tuned.steps, "val_loss": [before, after], "kept": kept}
    return {**info, "final_dir": tuned.final_dir} if kept else info


def processes() -> tuple[int, int]:
    """(rank, number of processes) under `accelerate launch` or `torchrun`; (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def distill_from_store(
    home: Path,
    *,
    name: str | None = None,
    base: Path | None = None,
    options: FinetuneOptions | None = None,
    min_rows: int = 8,
    say: Say = print,
) -> dict[str, Any]:
    """The store's gold → a fine-tuned GGUF in `home/models/NAME/`, registered."""
    from goldiff.home import models_dir, store_path
    from goldiff.store import open_database

    options = options or FinetuneOptions()
    if processes()[1] > 1:
        raise ConfigError(
            "several processes train from a dataset: export the store first (`goldiff export "
            "--format parquet --out DIR`) and run `goldiff distill --data DIR --name NAME`"
        )
    name = name or time.strftime("distilled-%Y%m%d-%H%M%S")
    work = models_dir(home) / name
    if not store_path(home).exists():
        raise NotEnoughDataError(
            f"no trace store at {store_path(home)}: record some work first (or run `goldiff replay REPO`)"
        )
    say("Exporting the gold as training rows (the newest 10% held out)...")
    phases = Phases()
    with phases.timed("data"):
        db, _ = open_database(store_path(home))
        try:
            # The held-out rows promotion asks, and the validation rows, begin at a commit
            # where there is one near.
            commit_times = tuple(e.ts for e in iter_events(db, "commit"))
            exported = export(
                db, ExportOptions(format="sft", split=True, commits=commit_times), work / "export"
            )
            # The workspace's code as it was when the validation rows begin (so, before the
            # held-out ones too): no answer validation or evaluation asks for is read.
            val_cutoff = validation_cutoff(exported.paths["train"], options.val_fraction, commit_times)
            texts = documents_at(db, val_cutoff if val_cutoff is not None else exported.cutoff)
            pairs = preference_pairs(db, exported.cutoff, val_cutoff, work)
        finally:
            db.conn.close()
    train_rows = exported.counts.get("train", 0)
    if train_rows < min_rows:
        raise NotEnoughDataError(
            f"only {train_rows} gold rows to train on; distilling needs at least {min_rows}. "
            "Keep working with capture on, or fill the store from history with `goldiff replay REPO`."
        )
    say(f"  {train_rows} training rows, {exported.counts.get('test', 0)} held out")
    with phases.timed("base"):
        model = base_model(base, work, say)
    with phases.timed("data"):
        rows = adapted_rows(exported.paths["train"], texts, work, options, say, val_cutoff)
    result = finetune(model, rows, work, options, say, phases, pairs)
    if result.get("kept_base"):
        reason = "no step beat the base on the validation gold"
        say(f"Nothing registered: {reason}; the base stays the model to use.")
        return {"name": None, **result, "promotion": {"promoted": False, "reason": reason}}
    held_out = str(exported.paths.get("test", ""))
    lineage = lineage_of(
        model, options, result, export_id=exported.export_id, train_rows=train_rows, test_rows=held_out
    )
    with phases.timed("heldout_loss"):
        # The base and the fine-tune on the export's test rows.
        from goldiff.distill.train import heldout_loss

        test = exported.paths.get("test")
        test_rows = load_rows(Path(test)) if test is not None and Path(test).is_file() else []
        shape = (options.seq_len, result["prompt"], result["heal"])
        before = heldout_loss(model.hf_dir, test_rows, model.tokenizer, *shape)
        after = heldout_loss(result["final_dir"], test_rows, model.tokenizer, *shape)
        improved = None if before is None or after is None else after < before
        losses = {"base": before, "tuned": after, "rows": len(test_rows), "improved": improved}
        lineage["heldout_loss"] = losses
        register(home, name, result, lineage, work)
    if losses["base"] is not None:
        say(f"  held-out loss {losses['base']:.3f} (base) → {losses['tuned']:.3f} (fine-tuned)")
    if losses["improved"] is False:
        say(f"Registered as {name!r}, not promoted: the fine-tune did not lower the held-out loss.")
        promotion = {"promoted": False, "reason": "the fine-tune did not lower the held-out loss"}
    else:
        from goldiff.distill.promote import promote_if_better
        from goldiff.evaluate import eval_rows

        say(f"Registered as {name!r}. Comparing it with the current default on the held-out gold...")
        with phases.timed("promotion"):
            decision = promote_if_better(home, name, eval_rows(test_rows), threads=options.threads)
        if decision.promote:
            say(f"Promoted {name!r} to the default: {decision.reason}.")
        else:
            say(f"Not promoted ({decision.reason}); `goldiff models use {name}` switches to it anyway.")
        promotion = decision.as_dict()
    return {"name": name, **result, "lineage": lineage, "promotion": promotion}


def preference_pairs(db: Any, cutoff: float | None, val_cutoff: float | None, work: Path) -> Path:
    """The kept text against the suggestion typed over, from before the validation rows.

    Suggestions of the deterministic `test` source (the demo's replay placeholder) are no
    model's answers, so they are not pairs to learn from.
    """
    exported = export(db, ExportOptions(format="preference", split=True, split_at=cutoff), work / "pairs")
    train = exported.paths.get("train")
    end = val_cutoff if val_cutoff is not None else cutoff
    rows = [
        r
        for r in (load_rows(Path(train)) if train is not None and Path(train).is_file() else [])
        if r.get("source") != "test" and (end is None or float(r["ts"]) < end)
    ]
    return write_rows(rows, work / "data" / "pairs.jsonl")


def validation_cutoff(gold: Path, share: float, commits: Sequence[float] = ()) -> float | None:
    """When the newest `share` of the gold rows begins: those rows only validate.

    A time split, as the held-out test rows are: validation then asks what the next days'
    gold will be, and the workspace's code is read as it was at this time, so no
    validation answer is in the code the model trains on (a hash split would score
    memorised lines, and early stopping would never stop). At a commit when there is one
    near (`export.at_commit`).
    """
    times = sorted(float(r["ts"]) for r in load_rows(gold) if r.get("ts") is not None)
    if len(times) < 10 or share <= 0:
        return None
    return at_commit(times, times[min(len(times) - 1, int(len(times) * (1 - share)))], share, commits)


def adapted_rows(
    gold: Path,
    texts: dict[str, str],
    work: Path,
    options: FinetuneOptions,
    say: Say = print,
    val_cutoff: float | None = None,
    until: float | None = None,
) -> Path:
    """The gold rows (weighted up), the workspace's own code and the validation rows, as one
    file. Rows from `until` on are left out: what a later choice compares on is neither
    trained nor validated on."""
    rows = [r for r in load_rows(gold) if until is None or float(r["ts"]) < until]
    val = [{**r, "split": "val"} for r in rows if val_cutoff is not None and float(r["ts"]) >= val_cutoff]
    train = [r for r in rows if val_cutoff is None or float(r["ts"]) < val_cutoff]
    code = text_rows(texts, options.seq_len) if options.workspace_code else []
    if code:
        say(f"  and {len(code)} windows of the workspace's own code from {len(texts)} documents")
    if val:
        say(f"  (the newest {len(val)} gold rows only validate)")
    return write_rows(
        training_rows(train, code, options.gold_weight, options.seed) + val, work / "data" / "adapt.jsonl"
    )


def lineage_of(
    model: BaseModel, options: FinetuneOptions, result: dict[str, Any], **data: Any
) -> dict[str, Any]:
    """What a fine-tune came from (base, `data`, recipe) and how it trained, kept beside it."""
    trained = {k: result.get(k) for k in ("steps", "tokens_seen", "train_loss", "preference")}
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"base": str(model.gguf), **data, "recipe": options.recipe, **trained, "created": created}


def register(home: Path, name: str, result: dict[str, Any], lineage: dict[str, Any], work: Path) -> None:
    """The fine-tune in the registry (a model, or a LoRA adapter on the base GGUF it trained on)
    and its lineage beside it in `work`."""
    from goldiff.sources.registry import Registry

    adapter = result.get("adapter")
    kind, base = ("adapter", result["gguf"]) if adapter else ("model", None)
    Registry(home).register(name, adapter or result["gguf"], kind=kind, base=base, lineage=lineage)
    (work / "lineage.json").write_text(json.dumps(lineage, indent=2) + "\n")


def distill_from_dataset(
    home: Path,
    data: str | Path,
    *,
    name: str | None = None,
    base: Path | None = None,
    options: FinetuneOptions | None = None,
    min_rows: int = 8,
    say: Say = print,
) -> dict[str, Any]:
    """A pooled dataset (folder, URL or export file) → a fine-tuned GGUF, registered.

    Runs as it is under `accelerate launch --num_processes N` or `torchrun`: the first
    process reads the dataset and the base into the work folder while the others wait, all
    of them train, and the first exports, checks and registers the result. A name is needed
    to resume (the same command with the same `--name` continues from its checkpoint).
    """
    from goldiff import pool
    from goldiff.home import models_dir

    options = options or FinetuneOptions()
    rank, world = processes()
    if name is None and world > 1:
        raise ConfigError("several processes must agree on the run's folder: give --name")
    name = name or time.strftime("distilled-%Y%m%d-%H%M%S")
    work = models_dir(home) / name
    rows_file = work / "data" / "train.jsonl"
    phases = Phases()
    if rank == 0:
        with phases.timed("data"):
            say(f"Reading {data}...")
            rows = [r for r in pool.read_rows(data) if r.get("completion") is not None]
            if len(rows) < min_rows:
                raise NotEnoughDataError(
                    f"{data} holds {len(rows)} sft row(s) with a completion; distilling needs at least "
                    f"{min_rows}. Pool more developers' exports (`goldiff pool`), or export sft rows, "
                    "not --no-code metrics."
                )
            write_rows(rows, rows_file)
            stores = sorted({str(r.get("store")) for r in rows if r.get("store")})
            say(f"  {len(rows)} rows from {len(stores)} store(s)")
        with phases.timed("base"):
            model = base_model(base, work, say)
    if world > 1:
        import torch
        from accelerate import PartialState

        # The others wait here for the first process's rows and base: data, to them. The same
        # device choice as train.py's Accelerator, which shares this state.
        with phases.timed("base" if rank == 0 else "data"):
            PartialState(cpu=not torch.cuda.is_available()).wait_for_everyone()
    if rank != 0:
        with phases.timed("base"):
            model = base_model(base, work, lambda _m: None)  # read by the first process already
    result = finetune(model, rows_file, work, options, say if rank == 0 else (lambda _m: None), phases)
    if rank != 0:
        return {"name": name, "rank": rank, **result}
    lineage = lineage_of(
        model, options, result, data=str(data), stores=len(stores), train_rows=len(rows), processes=world
    )
    register(home, name, result, lineage, work)
    say(f"Registered as {name!r}: `goldiff models use {name}` (or the editor's toggle) switches to it.")
    return {"name": name, **result, "lineage": lineage}
