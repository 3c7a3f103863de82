"""llama.cpp's repacked kernels, per quantization type, on this machine.

The engine worker loads models with llama.cpp's extra buffer types ("repacking") unless
they faulted here before (`goldiff.local.repack`, `server/goldiff/sources/repack.py`). This
measures, for each type Goldiff writes (`distill/quantize.py` QUANT_TYPES) plus Q4_0 and
IQ4_NL (quantized here directly with `llama_cpp.llama_model_quantize`: llama.cpp repacks
them on x86, Goldiff does not offer them) of a random-weight qwen2 (width 512, 4 layers),
and for the shipped default model (`models/goldiff-default-Q6_K.gguf`):

- whether a repacking load faults (the child's exit status),
- how many weights llama.cpp repacked, into which buffer types,
- prompt evaluation of the same 800 tokens, 2 threads, p50 (and min) of repeated
  evaluations, with repacking vs without (the baseline: the same model and prompt, loaded
  the safe way in the same process, the evaluations alternating between the two, so a busy
  spell of a shared machine falls on both sides),
- generation, ms per token (the median over the children of 16 greedy tokens each),
- whether greedy decoding gives the same tokens both ways (repacked kernels round
  differently: on random weights the logits differ by up to ~1).

Every load is its own subprocess, so a fault ends that child only. Plain measurements (no
targets): they tell which types gain, not a promise.

    python bench/bench_repack.py [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT)]

from goldiff.distill.quantize import QUANT_TYPES  # noqa: E402
from goldiff.sources.repack import is_fault  # noqa: E402

from tests.tiny_models import write_tiny_gguf  # noqa: E402

THREADS = 2
PROMPT_TOKENS = 800
GREEDY_TOKENS = 16
# Types llama.cpp repacks on x86 that Goldiff does not write (llama_ftype values).
EXTRA_TYPES = {"Q4_0": 2, "IQ4_NL": 25}
DEFAULT_MODEL = ROOT / "models" / "goldiff-default-Q6_K.gguf"

# One child per round: the model loaded the safe way, then with repacking (a fault ends the
# child here: its exit status says so), then prompt evaluations alternating between the two,
# so a busy spell of the machine falls on both sides. Results as JSON on stdout.
CHILD = """
import json, sys, time
import numpy as np
from goldiff.sources.llamacpp import load_llama_with
path, repeats, n_prompt, n_greedy, threads = sys.argv[1], *map(int, sys.argv[2:])
def load(repack):
    return load_llama_with(path, repack=repack, n_ctx=1024, n_threads=threads,
                           n_threads_batch=threads, n_batch=512, verbose=False)
(off, _), (on, info) = load(False), load(True)
n_vocab = off.n_vocab()
prompt = [(i * 7919) % (n_vocab - 10) + 5 for i in range(n_prompt)]
times = {"off": [], "on": []}
for r in range(repeats + 1):  # the first of each is a warm-up
    for side, llm in (("off", off), ("on", on)) if r % 2 else (("on", on), ("off", off)):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        if r:
            times[side].append((time.perf_counter() - t0) * 1000.0)
code = "def mean(values):\\n    total = 0\\n    for v in values:\\n        total += v\\n    return "
greedy, decode = {}, {}
for side, llm in (("off", off), ("on", on)):
    llm.reset()
    llm.eval(llm.tokenize(code.encode(), add_bos=False, special=False))
    greedy[side] = []
    t0 = time.perf_counter()
    for _ in range(n_greedy):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy[side].append(token)
        llm.eval([token])
    decode[side] = (time.perf_counter() - t0) * 1000.0 / n_greedy
result = {"repack": info.as_dict(), "ms": times, "greedy": greedy, "decode_ms": decode}
print("RESULT " + json.dumps(result))
"""


def quantized(src: Path, work: Path) -> dict[str, Path]:
    """The source model in every type measured (F32 is the source itself)."""
    import llama_cpp

    out: dict[str, Path] = {}
    for name, ftype in {**QUANT_TYPES, **EXTRA_TYPES}.items():
        dst = work / f"bench-{name}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        status = llama_cpp.llama_model_quantize(
            os.fsencode(str(src)), os.fsencode(str(dst)), ctypes.byref(params)
        )
        if status != 0:
            raise RuntimeError(f"quantizing to {name} failed ({status})")
        out[name] = dst
    return out


def load_once(model: Path, repeats: int) -> dict[str, Any]:
    """One child (see CHILD): its exit status and, if it lived, what it measured."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "server"), os.environ.get("PYTHONPATH")])),
    }
    args = [str(model), *map(str, (repeats, PROMPT_TOKENS, GREEDY_TOKENS, THREADS))]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, timeout=600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    result: dict[str, Any] = json.loads(lines[-1][7:]) if lines and proc.returncode == 0 else {}
    result["returncode"] = proc.returncode
    if proc.returncode != 0:
        result["stderr_tail"] = proc.stderr[-500:]
    return result


def measure_model(name: str, model: Path, rounds: int, repeats: int) -> dict[str, Any]:
    """`rounds` children; the p50 (and min) of each side over all their evaluations."""
    runs = []
    for _ in range(rounds):
        runs.append(load_once(model, repeats))
        if runs[-1]["returncode"] != 0:
            break  # a fault is an answer: no need to crash it again
    last = runs[-1]
    row: dict[str, Any] = {
        "type": name,
        "faulted": is_fault(last["returncode"]),
        "returncode": last["returncode"],
    }
    if last["returncode"] != 0:
        row["stderr_tail"] = last.get("stderr_tail")
        return row
    for side in ("off", "on"):
        times = [t for run in runs for t in run["ms"][side]]
        row[f"{side}_ms"] = statistics.median(times)
        row[f"{side}_min_ms"] = min(times)
    for side in ("off", "on"):  # one token at a time, as a suggestion is generated
        row[f"{side}_decode_ms"] = statistics.median(run["decode_ms"][side] for run in runs)
    row["tensors"] = last["repack"]["tensors"]
    row["buffers"] = last["repack"]["buffers"]
    same = 0
    for a, b in zip(last["greedy"]["on"], last["greedy"]["off"], strict=True):
        if a != b:
            break
        same += 1
    row["greedy_same"] = same
    row["greedy_agree"] = same == GREEDY_TOKENS
    return row


def measure(quick: bool = False, model: Path | None = None) -> list[dict[str, Any]]:
    rounds, repeats = (1, 3) if quick else (2, 4)
    rows = []
    with tempfile.TemporaryDirectory(prefix="goldiff-bench-repack-") as tmp:
        work = Path(tmp)
        src = write_tiny_gguf(work / "source-f32.gguf", width=512, n_layer=4, dtype="f32")
        for name, path in quantized(src, work).items():
            rows.append(measure_model(name, path, rounds, repeats))
        default = model or DEFAULT_MODEL
        if default.exists():
            rows.append(measure_model(f"default model {default.name}", default, rounds, repeats))
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Entries for the benchmark board (bench/run.py): plain measurements, no targets."""
    entries = []
    for row in measure(quick):
        name = row["type"]
        label = name if name.startswith("default model") else f"{name}, random-weight qwen2 width 512"
        entry: dict[str, Any] = {  # value and baseline: p50s of the same evaluations, interleaved
            "name": f"repack_prompt_eval_p50 ({label}, {PROMPT_TOKENS} tokens, {THREADS} threads)",
            "unit": "ms",
            "baseline": {"name": "same model loaded without repacking, ms p50", "value": row.get("off_ms")},
            "target": None,
            "kind": "measurement",
            "detail": {
                k: row.get(k)
                for k in (
                    "faulted",
                    "returncode",
                    "tensors",
                    "buffers",
                    "greedy_agree",
                    "greedy_same",
                    "on_min_ms",
                    "off_min_ms",
                    "on_decode_ms",
                    "off_decode_ms",
                )
            },
        }
        if "on_ms" in row and "off_ms" in row:
            entry["value"] = round(row["on_ms"], 1)
            entry["baseline"]["value"] = round(row["off_ms"], 1)
        else:
            entry["value"] = "error"
            entry["baseline"] = None  # measured in the same child, which did not live
            why = "faulted" if row["faulted"] else "failed"
            entry["error"] = f"the repacking load {why} (exit status {row['returncode']})"
        entries.append(entry)
    return entries


def _ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'type':<40} {'fault':>5} {'repacked':>8} {'buffers':<11} "
        f"{'off p50':>7} {'on p50':>7} {'on/off':>6} {'off min':>7} {'on min':>7} {'on/off':>6} "
        f"{'tok off':>7} {'tok on':>7} greedy"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        off, on = r.get("off_ms"), r.get("on_ms")
        ratio = f"{on / off:.2f}" if on and off else "-"
        off_min, on_min = r.get("off_min_ms"), r.get("on_min_ms")
        min_ratio = f"{on_min / off_min:.2f}" if on_min and off_min else "-"
        greedy = "same" if r.get("greedy_agree") else f"{r.get('greedy_same', '-')}/{GREEDY_TOKENS} same"
        lines.append(
            f"{r['type']:<40} {'YES' if r['faulted'] else 'no':>5} {r.get('tensors', '-')!s:>8} "
            f"{','.join(r.get('buffers') or []) or '-':<11} {_ms(off):>7} {_ms(on):>7} {ratio:>6} "
            f"{_ms(off_min):>7} {_ms(on_min):>7} {min_ratio:>6} "
            f"{_ms(r.get('off_decode_ms'), 2):>7} {_ms(r.get('on_decode_ms'), 2):>7} {greedy}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", type=Path, help="another GGUF for the last row (default: the shipped one)")
    args = parser.parse_args()
    rows = measure(args.quick, args.model)
    print(table(rows))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
