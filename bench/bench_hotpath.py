"""The local engine's hot path: decoding the answer, and files after an engine restart.

Side by side in one run, on the same inputs:

1. decode     generation tokens/s of `LocalSource.complete` on long answers, the answer's
              text kept incrementally (`AnswerText`: each token decoded once, the stop rule
              asked only when a line ends) vs the way it was before (the whole answer
              decoded again, and the rule asked, after every token: quadratic in its length),
              swapped into the same engine. The tiny random-weight model, whose tokens are
              cheap, so the text work is a visible share; and the same text work alone
              (real pieces replayed, no model), tokens/s.
2. restart    the first completion in a file seen before, after the engine process was
              killed and restarted: with the file states kept on disk (`states.py`) vs
              without (the prompt evaluated cold), p50 ms. The shipped default model (a
              random-weight qwen2 if it is missing), a >= 1,000-token context, 2 threads.

    python bench/bench_hotpath.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server"), str(ROOT)]

from goldiff.sources.base import CompletionRequest, StopRule  # noqa: E402
from goldiff.sources.local import AnswerText, LocalSource  # noqa: E402
from goldiff.sources.worker import WorkerSource  # noqa: E402

from bench.bench_engine import cursor_request, default_model, python_file  # noqa: E402
from tests.tiny_models import write_tiny_gguf  # noqa: E402

THREADS = 2


class WholeAnswerText(AnswerText):
    """The answer as it was kept before: the whole of it decoded again after every token."""

    def __init__(self, skip: int = 0) -> None:
        super().__init__(skip)
        self._out = b""

    def add(self, piece: bytes) -> bool:
        self.pieces.append(piece)
        self._out += piece
        return True  # the rule was asked after every token

    def text(self) -> str:
        return self._out[self.skip :].decode("utf-8", "ignore")


def _generate(source: LocalSource, kind: type[AnswerText], max_tokens: int) -> tuple[float, str]:
    source.answer_text = kind
    # Block mode in an empty file: the tiny model runs to max_tokens.
    request = CompletionRequest(prefix="", suffix="", max_tokens=max_tokens, max_seconds=600)
    source.llm.reset()  # type: ignore[no-untyped-call]
    completion = source.complete(request)
    assert completion.completion_tokens == max_tokens, completion.stop_reason
    return max_tokens / (completion.latency_ms / 1000.0), completion.raw_text


def _text_only(pieces: list[bytes], kind: type[AnswerText], rounds: int) -> float:
    rule = StopRule(multiline=False, min_indent=0)  # one long line: never cut
    started = time.perf_counter()
    for _ in range(rounds):
        answer = kind(0)
        for piece in pieces:
            if answer.add(piece) and rule.cut(answer.text()) is not None:
                break
        answer.final()
    return len(pieces) * rounds / (time.perf_counter() - started)


def decode(work: Path, lengths: tuple[int, ...], repeats: int) -> dict[str, Any]:
    source = LocalSource(write_tiny_gguf(work / "tiny.gguf"), n_threads=1, verbose=False)
    out: dict[str, Any] = {}
    try:
        for n in lengths:
            new, old = [], []
            for _ in range(repeats):  # interleaved, so load on the machine hits both alike
                rate, text_new = _generate(source, AnswerText, n)
                new.append(rate)
                rate, text_old = _generate(source, WholeAnswerText, n)
                old.append(rate)
                assert text_new == text_old  # the same answer, byte for byte
            out[f"generate_{n}_tokens_per_s"] = statistics.median(new)
            out[f"generate_{n}_tokens_per_s_whole_decode"] = statistics.median(old)
        # The text work alone, on a long line of multi-byte text split as the tokenizer splits it.
        line = "naïve = 'héllo wörld ✓ 日本語 €' + " * 200
        pieces = [bytes(source.llm.detokenize([t])) for t in source.tokenize(line)][: max(lengths)]
        out["text_tokens"] = len(pieces)
        out["text_only_tokens_per_s"] = _text_only(pieces, AnswerText, 3)
        out["text_only_tokens_per_s_whole_decode"] = _text_only(pieces, WholeAnswerText, 3)
    finally:
        source.answer_text = AnswerText
        source.close()
    return out


def _first_after_restart(model: Path, states: Path | None, files: int) -> list[float]:
    source = WorkerSource(model, threads=THREADS, state_dir=states)
    times = []
    try:
        requests = []
        for i in range(files):
            request = cursor_request(python_file(i), f"/bench/restart{i}.py")
            request.captured = True
            requests.append(request)
            source.complete(request)
        if states is not None:
            deadline = time.monotonic() + 60  # the idle engine writes the last file's state
            while len(list(states.glob("*.state"))) < files and time.monotonic() < deadline:
                time.sleep(0.05)
        for request in requests:
            pid = source.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            while source.pid in (None, pid):
                time.sleep(0.01)
            t0 = time.perf_counter()
            source.complete(request)
            times.append((time.perf_counter() - t0) * 1000.0)
            time.sleep(0.3)
    finally:
        source.close()
    return times


def restart(work: Path, files: int) -> dict[str, Any]:
    model = default_model(work)
    kept = _first_after_restart(model, work / "states", files)
    cold = _first_after_restart(model, None, files)
    return {
        "model": model.name,
        "first_after_restart_kept_p50_ms": statistics.median(kept),
        "first_after_restart_cold_p50_ms": statistics.median(cold),
        # On a busy machine single requests stall for seconds; the fastest shows the work itself.
        "first_after_restart_kept_min_ms": min(kept),
        "first_after_restart_cold_min_ms": min(cold),
    }


def measure(quick: bool = False) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="goldiff-bench-hotpath-"))
    report = decode(work, (256, 1024) if quick else (256, 1024, 1900), 3 if quick else 5)
    report.update(restart(work, 3 if quick else 6))
    return report


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Entries for the benchmark board (bench/run.py)."""
    r = measure(quick)
    entries = [
        {
            "name": f"engine_generate_{n}_tokens (tiny model, answer decoded once)",
            "value": round(r[f"generate_{n}_tokens_per_s"], 1),
            "unit": "tokens/s",
            "baseline": {
                "name": "same engine, whole answer decoded after every token, tokens/s",
                "value": round(r[f"generate_{n}_tokens_per_s_whole_decode"], 1),
            },
            "target": None,
        }
        for n in (256, 1024, 1900)
        if f"generate_{n}_tokens_per_s" in r
    ]
    entries.append(
        {
            "name": f"engine_answer_text_only ({r['text_tokens']} multi-byte tokens)",
            "value": round(r["text_only_tokens_per_s"], 1),
            "unit": "tokens/s",
            "baseline": {
                "name": "whole answer decoded after every token, tokens/s",
                "value": round(r["text_only_tokens_per_s_whole_decode"], 1),
            },
            "target": None,
        }
    )
    entries.append(
        {
            "name": f"engine_first_completion_after_restart_p50 ({r['model']}, file seen before)",
            "value": round(r["first_after_restart_kept_p50_ms"], 1),
            "unit": "ms",
            "baseline": {
                "name": "same, no file states kept on disk (cold prompt), ms p50",
                "value": round(r["first_after_restart_cold_p50_ms"], 1),
            },
            "target": None,
        }
    )
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.quick), indent=2))


if __name__ == "__main__":
    main()
