"""The local engine: a GGUF model run by llama.cpp (llama-cpp-python).

One warm `Llama` per model is kept between requests, so a prompt that shares its start
with the previous one (typing moves only the end of the prefix) re-evaluates just the
tokens after the shared part. Switching files would throw that away, so the evaluated
state (the KV cache of sequence 0) of the last `STATE_FILES` files is kept as bytes and
put back when the developer returns to one of them. With a `state_dir` those states are
also kept on disk (`states.py`: captured documents only, bounded, per model), so an engine
restarted after a crash starts files seen before warm. A file never seen is evaluated cold;
its prompt is capped at what this machine evaluates in `COLD_SECONDS` (measured at
load, the best of a few probes), in whole `PROMPT_STEP`s so the cap never moves the
prompt's start. A serving profile's `context_tokens` (`profile.py`) caps it too: the
smaller cap wins.

Prompts are FIM token ids (`fim.py`), or the prefix alone for a model without FIM tokens
or whose FIM measured weak (its serving profile, `profile.py`). Generation is ours, greedy
and token by token, so it stops where a suggestion should end (the shared `StopRule`), at
an end-of-generation or control token, after `max_tokens`, when the time budget is spent,
where the model's confidence drops below the profile's `min_token_prob`, or as soon as the
`cancel` event is set — also between chunks of a long prompt evaluation. Each generated
token's log-probability under the model is returned with the completion, and a profile's
show/hide gate (`gate.py`) scores the answer (`Completion.gate_score`).

Token healing (profile `heal`): a prompt that ends inside a token, or in indentation, ends
where training text is rarely split; the last prompt token is taken back and the first
generated token must start with its text, so the model chooses its own tokenization of the
boundary (measured in models/README.md).

The language server never runs this in its own process: `worker.py` runs it in a child
process, so that a native fault here cannot end capture. Evaluation, the demo and the
benchmarks use the same class, through the same worker or directly. Importing this module
imports llama_cpp.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from goldiff.errors import ModelLoadError
from goldiff.gate import apply, features, load_gate
from goldiff.sources.base import Completion, CompletionRequest, Deadline, finish_text
from goldiff.sources.fim import FimPrompt, VocabInfo, resolve_template
from goldiff.sources.llamacpp import checked_model, load_llama_with
from goldiff.sources.profile import ServeProfile, load_profile
from goldiff.sources.states import StateCache, model_identity

log = logging.getLogger(__name__)

N_CTX = 2048  # prompt + generation; larger contexts cost memory and prompt time on CPU
# Prompt tokens evaluated between two looks at the cancel flag (the environment variable:
# for tests that must catch the engine mid-prompt).
PREFILL_CHUNK = int(os.environ.get("GOLDIFF_PREFILL_CHUNK", "") or 32)
SUFFIX_SHARE = 0.25  # of the prompt budget given to the text after the cursor
PREFIX_STEP = 64  # the prefix is cut from the left in steps of this many tokens
_BLANK = (b" ", b"\t", b"\n", b"\r")
STATE_FILES = 8  # files whose evaluated prompt state is kept for a switch back
STATE_BYTES = 512 * 1024 * 1024  # and at most this many bytes of it
# A file's state is written to disk (`states.py`) when it would spare a restarted engine at
# least this many prompt tokens more than the copy already there.
PERSIST_GAIN = 128
COLD_SECONDS = 0.2  # what evaluating a cold prompt may take, measured on this machine
PROBES = 5  # timed evaluations of a 64-token probe at load; the fastest sets the cap
PROMPT_STEP = 128  # the cold prompt cap is a multiple of this many tokens
MIN_PROMPT = 256  # never cap a prompt below this many tokens


class _Stopped(Exception):
    """Generation ended early; the message is the stop reason."""


def _common(a: list[int] | np.ndarray[Any, Any], b: list[int]) -> int:
    m = min(len(a), len(b))
    diff = np.nonzero(np.asarray(a[:m]) != np.asarray(b[:m]))[0]
    return int(diff[0]) if len(diff) else m


class AnswerText:
    """The answer as tokens arrive: each token's bytes kept once, its text decoded once.

    The stop rule needs the text so far after every token. Decoding the whole answer again
    each time is quadratic in its length; an incremental UTF-8 decoder carries a character
    split across tokens over to the next token instead, and gives the same text (errors
    ignored, as a prefix of a longer answer may end inside a character). The first `skip`
    bytes (a healed prompt token's own text) are not part of the answer.
    """

    def __init__(self, skip: int = 0) -> None:
        self.pieces: list[bytes] = []
        self.skip = skip
        self._left = skip
        self._decoder = codecs.getincrementaldecoder("utf-8")("ignore")
        self._chunks: list[str] = []
        self.length = 0  # characters decoded so far

    def add(self, piece: bytes) -> bool:
        """Append one token's bytes; True if the text gained a line end (the rule may cut)."""
        self.pieces.append(piece)
        if self._left:
            n = min(self._left, len(piece))
            piece, self._left = piece[n:], self._left - n
        chunk = self._decoder.decode(piece)
        if chunk:
            self._chunks.append(chunk)
            self.length += len(chunk)
        # A newline byte never sits inside a multi-byte character: it is in this chunk.
        return "\n" in chunk

    def text(self) -> str:
        """The text so far (a character still incomplete at the end is left out)."""
        if len(self._chunks) > 1:
            self._chunks[:] = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def final(self) -> str:
        """The whole answer, decoded once; bytes that are no UTF-8 become U+FFFD."""
        return b"".join(self.pieces)[self.skip :].decode("utf-8", "replace")


class LocalSource:
    """A FIM code model in a GGUF file, optionally with a GGUF LoRA adapter on top."""

    kind = "local"
    answer_text: Callable[[int], AnswerText] = AnswerText  # the benchmark swaps in the old way

    def __init__(
        self,
        model_path: str | Path,
        *,
        adapter_path: str | Path | None = None,
        name: str | None = None,
        n_ctx: int = N_CTX,
        n_threads: int | None = None,
        profile: ServeProfile | None = None,
        gate: str | Path | None = None,
        cold_seconds: float = COLD_SECONDS,
        state_dir: str | Path | None = None,
        verbose: bool = True,
        repack: bool = False,
    ) -> None:
        self.model_path, self.adapter_path, self.model = checked_model(model_path, adapter_path, name)
        self.profile = profile if profile is not None else load_profile(self.model_path)
        gate_path = Path(gate) if gate else self.profile.gate
        try:
            self.gate = load_gate(gate_path)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the show/hide gate {gate_path}: {exc}") from exc
        threads = os.environ.get("GOLDIFF_THREADS", "")
        n_threads = n_threads or (int(threads) if threads.isdigit() and int(threads) > 0 else None)
        try:
            # verbose=False makes llama-cpp-python point fd 1 at /dev/null while it loads: only
            # safe where fd 1 is not a protocol channel (the engine process moves its own off
            # fd 1 and loads quietly). Otherwise its load log goes to stderr; quieted below.
            # `repack`: llama.cpp's repacked kernels (extra buffer types), which fault on some
            # CPUs; only the engine worker asks for them (`worker.py`, `repack.py`).
            self.llm, self.repack = load_llama_with(
                str(self.model_path),
                repack=repack,
                lora_path=str(self.adapter_path) if self.adapter_path else None,
                # The profile's context budget (a shorter prompt is a faster cold start); the
                # measured cold-prompt cap below applies within it, so the smaller one wins.
                n_ctx=self.profile.context_tokens or n_ctx,
                # Unset (argument and GOLDIFF_THREADS): generation on half the cores (llama.cpp's
                # threads spin, and the editor needs a core), prompt evaluation (short bursts) on
                # all, as llama.cpp's defaults. Set: both, so a limit is a limit.
                n_threads=n_threads or max(1, (os.cpu_count() or 2) // 2),
                n_threads_batch=n_threads or os.cpu_count() or 1,
                verbose=verbose,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {self.model_path}"
                + (f" with the adapter {self.adapter_path}" if self.adapter_path else "")
                + f" ({exc}). The file may be corrupt, or the adapter made for another base model."
            ) from exc
        if self.adapter_path is not None and not self.llm._lora_adapter:
            # llama-cpp-python 0.3.36 checks the adapter pointer with `is None`, so an
            # adapter llama.cpp refused (wrong base, wrong shapes) is a NULL it lets through:
            # the model would silently run without it.
            self.llm.close()
            raise ModelLoadError(
                f"llama.cpp refused the adapter {self.adapter_path} for {self.model_path}: it was "
                "made for another base model (tensor shapes differ). Use the adapter's own base."
            )
        from llama_cpp import _logger

        _logger.set_verbose(False)
        self.llm.verbose = False
        info = self._vocab_info()
        self.fim: FimPrompt | None = None
        if self.profile.prompt != "prefix":
            try:
                self.fim = resolve_template(info)
            except ModelLoadError:
                if self.profile.prompt == "fim":
                    self.llm.close()
                    raise
                # No FIM tokens: ask left to right; the suffix still shapes the stop rule.
        self.stop_ids = self.fim.stop_ids if self.fim is not None else info.eog_ids
        adds_bos = str(self.llm.metadata.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
        self.bos = [info.bos_id] if adds_bos and info.bos_id is not None and info.bos_id >= 0 else []
        self.n_ctx = self.llm.n_ctx()
        self._vocab = self.llm._model.vocab
        self._n_vocab = self.llm.n_vocab()
        self._lock = threading.Lock()
        self.last_prompt: list[int] = []  # the ids of the last prompt, for tests and benchmarks
        self.last_tokens: list[int] = []  # the ids the last answer generated, likewise
        self._states: OrderedDict[str, tuple[list[int], bytes]] = OrderedDict()
        self._state_key: str | None = None  # the file whose prompt is in the KV cache now
        self.restored = 0  # prompts started from a saved file state (tests, benchmarks)
        self._state_kept = False  # the current file's state may be written to disk
        self._persisted: OrderedDict[str, list[int]] = OrderedDict()  # what disk holds, by file
        self.disk: StateCache | None = None
        if state_dir is not None:
            self.disk = StateCache(Path(state_dir), self._identity())
            from goldiff.capture.redaction import secret_spans

            # The secret scan's first call loads its detectors (tens of ms): here, not mid-completion.
            secret_spans("api_key = 'warm-up-only-0123456789abcdef'")
        self.on_phase: Callable[[str], None] = lambda phase: None  # "prefill", then "generate"
        self.prompt_cap = self._measure_prompt_cap(cold_seconds)

    def _identity(self) -> str:
        """What a saved state depends on: a state made with anything else is not loaded."""
        files = []
        for path in (self.model_path, self.adapter_path):
            if path is not None:
                st = path.stat()
                files += [str(path.resolve()), st.st_size, st.st_mtime_ns]
        return model_identity(*files, self.n_ctx, llama_cpp.__version__, self.prompt_mode)

    @property
    def prompt_mode(self) -> str:
        return "fim" if self.fim is not None else "prefix"

    def _vocab_info(self) -> VocabInfo:
        llm = self.llm
        meta = llm.metadata

        def special_id(text: str) -> int | None:
            raw = text.encode("utf-8")
            with_special = llm.tokenize(raw, add_bos=False, special=True)
            if len(with_special) != 1:
                return None
            # Plain text that happens to be one token is not a control token.
            if llm.tokenize(raw, add_bos=False, special=False) == with_special:
                return None
            return with_special[0]

        vocab = llm._model.vocab
        eog = {i for i in (llm.token_eos(), llama_cpp.llama_vocab_eot(vocab)) if i >= 0}
        return VocabInfo(
            special_id=special_id,
            name=f"{meta.get('general.name', '')} {self.model_path.name}",
            arch=meta.get("general.architecture", ""),
            bos_id=llm.token_bos(),
            fim_ids=(
                int(llama_cpp.llama_vocab_fim_pre(vocab)),
                int(llama_cpp.llama_vocab_fim_suf(vocab)),
                int(llama_cpp.llama_vocab_fim_mid(vocab)),
            ),
            eog_ids=frozenset(eog),
        )

    # ------------------------------------------------------------------ prompt

    def tokenize(self, text: str) -> list[int]:
        """User text to ids with special tokens off: `<|fim_suffix|>` in a file stays text."""
        if not text:
            return []
        return list(self.llm.tokenize(text.encode("utf-8", "surrogatepass"), add_bos=False, special=False))

    def _measure_prompt_cap(self, seconds: float) -> int:
        """Prompt tokens this machine evaluates cold in `seconds`: the best of a few probes.

        One probe measured whatever else the cores were doing at that instant, and its cap
        holds for the engine's life (on 2 busy cores the shipped model was capped at 256
        tokens in one engine and 384 in the next; 440, its context's limit, on idle ones).
        The first evaluation also pays for allocating the compute graph.
        """
        budget = max(16, self.n_ctx - 64 - 8)
        probe = [self.llm.token_bos() if self.llm.token_bos() >= 0 else 0] * 64
        best = float("inf")
        for _ in range(PROBES):
            self.llm.reset()  # type: ignore[no-untyped-call]
            started = time.perf_counter()
            self.llm.eval(probe)
            best = min(best, time.perf_counter() - started)
            if seconds * len(probe) >= budget * best:
                break  # the cap is already the context's limit: no faster probe could raise it
        per_token = max(best / len(probe), 1e-6)
        self.llm.reset()  # type: ignore[no-untyped-call]
        cap = int(seconds / per_token) // PROMPT_STEP * PROMPT_STEP
        return max(MIN_PROMPT, min(budget, cap))

    def prompt_ids(self, request: CompletionRequest) -> list[int]:
        return self.build_prompt(request)[0]

    def build_prompt(self, request: CompletionRequest) -> tuple[list[int], bytes]:
        """The prompt's token ids, and the bytes the answer must start with (healing)."""
        # Capped by the context (the profile's, when it has one) and by what this machine
        # evaluates cold in `cold_seconds`, whichever is smaller.
        budget = max(16, min(self.n_ctx - request.max_tokens, self.prompt_cap) - 8)
        suffix_ids = self.tokenize(request.suffix)[: int(budget * SUFFIX_SHARE)] if self.fim else []
        prefix_ids = self.tokenize(request.prefix)
        heal = b""
        if self.profile.heal and prefix_ids and not request.prefix.endswith("\n"):
            # The last token is asked again, constrained to start with its text.
            heal = bytes(self.llm.detokenize([prefix_ids[-1]]))
            prefix_ids = prefix_ids[:-1]
        room = budget - len(suffix_ids)
        if len(prefix_ids) > room:
            # Cut in whole steps so the prompt's start (and its cached KV) stays put while
            # the developer types, instead of shifting by one token every keystroke.
            excess = len(prefix_ids) - room
            drop = -(-excess // PREFIX_STEP) * PREFIX_STEP
            prefix_ids = prefix_ids[drop:]
        if self.fim is None:
            return self.bos + prefix_ids, heal
        return self.fim.build(prefix_ids, suffix_ids), heal

    def _prefill(self, prompt: list[int], cancel: threading.Event, deadline: Deadline) -> int:
        """Evaluate what the KV cache lacks of `prompt`; return how many tokens were reused."""
        llm = self.llm
        common = _common(llm.input_ids[: llm.n_tokens], prompt)
        # The last prompt token is always evaluated again: its logits start the generation.
        common = min(common, len(prompt) - 1)
        llm.n_tokens = common
        rest = prompt[common:]
        for i in range(0, len(rest), PREFILL_CHUNK):
            if cancel.is_set():
                raise _Stopped("cancelled")
            if deadline.expired:
                raise _Stopped("max_time")
            llm.eval(rest[i : i + PREFILL_CHUNK])
        return common

    # ------------------------------------------------------------------ file states

    def _switch_file(self, key: str, prompt: list[int], keep: bool = False) -> None:
        """Keep the state of the file being left; start from `key`'s own if it has one.

        `keep`: `key` is a captured document, whose state may also go to disk.
        """
        if key == self._state_key:
            self._state_kept = keep
            return
        llm = self.llm
        if self._state_key is not None and llm.n_tokens > 0:
            self._save_state(self._state_key)
        self._state_key, self._state_kept = key, keep
        saved = self._states.get(key)
        if saved is None and self.disk is not None and key:
            saved = self.disk.load(key)  # kept by an engine that ran before this one
            if saved is not None:
                self._remember_persisted(key, saved[0])
        if saved is None:
            return
        tokens, blob = saved
        if _common(tokens, prompt) <= _common(llm.input_ids[: llm.n_tokens], prompt):
            return  # what is in the cache now serves this prompt as well
        buf = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buf, len(blob), 0) != len(blob):
            # The cache is in an unknown state: evaluate from scratch.
            llm.reset()  # type: ignore[no-untyped-call]
            return
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        if key in self._states:
            self._states.move_to_end(key)
        self.restored += 1

    def _state_bytes(self) -> bytes:
        ctx = self.llm._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        buf = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0))
        return ctypes.string_at(buf, written)  # one copy of what may be hundreds of MB

    def _save_state(self, key: str) -> None:
        tokens = self.evaluated_tokens()
        blob = self._state_bytes()
        self._states[key] = (tokens, blob)
        self._states.move_to_end(key)
        while len(self._states) > STATE_FILES or (
            len(self._states) > 1 and sum(len(b) for _, b in self._states.values()) > STATE_BYTES
        ):
            self._states.popitem(last=False)
        if self._state_kept:
            self._persist(key, tokens, blob)

    def _remember_persisted(self, key: str, tokens: list[int]) -> None:
        self._persisted[key] = tokens
        self._persisted.move_to_end(key)
        while len(self._persisted) > 4 * STATE_FILES:
            self._persisted.popitem(last=False)

    def _persist(self, key: str, tokens: list[int], blob: bytes | None = None) -> None:
        """Hand the state to the disk cache if it spares a restart enough prompt work."""
        on_disk = self._persisted.get(key, [])
        if self.disk is None or not key or len(tokens) - _common(on_disk, tokens) < PERSIST_GAIN:
            return
        from goldiff.capture.redaction import secret_spans

        text = bytes(self.llm.detokenize(tokens)).decode("utf-8", "replace")
        if secret_spans(text):
            return  # the trace store keeps no secret, and neither does this cache
        self.disk.save(key, tokens, blob if blob is not None else self._state_bytes())
        self._remember_persisted(key, tokens)

    def checkpoint(self) -> None:
        """Write the current file's state to disk if worth it (the engine calls this when idle)."""
        with self._lock:
            key = self._state_key
            if key and self._state_kept and self.llm.n_tokens > 0:
                self._persist(key, self.evaluated_tokens())

    # ------------------------------------------------------------------ generation

    def _is_stop(self, token: int) -> bool:
        return (
            token in self.stop_ids
            or bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))
            or bool(llama_cpp.llama_vocab_is_control(self._vocab, token))
        )

    @functools.cached_property
    def _piece_table(self) -> tuple[list[bytes], np.ndarray[Any, np.dtype[np.bool_]]]:
        """Every token's bytes, and which tokens end a suggestion (built once, for healing)."""
        pieces = [bytes(self.llm.detokenize([i])) for i in range(self._n_vocab)]
        return pieces, np.fromiter((self._is_stop(i) for i in range(self._n_vocab)), bool, self._n_vocab)

    def _healing_mask(self, remaining: bytes) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
        """Tokens that can come next while `remaining` bytes of the healed text are unmatched:
        those that cover it, and those that are a proper start of it (the text is then matched
        over several tokens, as the model's own tokenization may split it). None: no token fits.
        """
        pieces, stops = self._piece_table
        n = len(remaining)
        # Whitespace healing: the answer covers exactly the indentation or space the prompt
        # ended with, then code (more blanks would over-indent the line; a newline or the
        # bare blanks would leave the cursor's line empty).
        blank = remaining[-1:] in (b" ", b"\t")

        def fits(p: bytes) -> bool:
            if p.startswith(remaining):
                return not blank or (len(p) > n and p[n : n + 1] not in _BLANK)
            return 0 < len(p) < n and remaining.startswith(p)

        allowed = np.fromiter((fits(p) for p in pieces), bool, self._n_vocab) & ~stops
        return allowed if allowed.any() else None

    @property
    def min_token_prob(self) -> float:
        """Where a suggestion stops: the gate's learned stop (the user's own answers chose
        it), else the model's serving profile."""
        if self.gate is not None and self.gate.stop is not None:
            return self.gate.stop
        return self.profile.min_token_prob

    def complete(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Completion:
        cancel = cancel or threading.Event()
        deadline = Deadline(request.max_seconds)
        rule = request.stop_rule()
        min_logprob = math.log(self.min_token_prob) if self.min_token_prob > 0 else -math.inf
        answer = self.answer_text(0)
        logprobs: list[float] = []
        ends: list[int] = []
        tokens: list[int] = []
        reused = 0
        reason = "max_tokens"
        with self._lock:
            prompt, heal = self.build_prompt(request)
            if not prompt:
                prompt = self.bos or self.tokenize("\n")
            self.last_prompt = prompt
            try:
                self._switch_file(request.path or "", prompt, keep=request.captured)
                self.on_phase("prefill")
                reused = self._prefill(prompt, cancel, deadline)
                remaining = heal  # healed bytes the answer has not covered yet
                # A pass over the whole vocabulary: made once for the first token, not twice.
                mask = self._healing_mask(heal) if heal else None
                if heal and mask is None:
                    self.llm.eval(self.tokenize(heal.decode("utf-8", "replace")))
                    heal = remaining = b""
                answer = self.answer_text(len(heal))
                self.on_phase("generate")
                while len(tokens) < request.max_tokens:
                    # The next-token logits after the last evaluated token.
                    ptr = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
                    logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).astype(np.float64)
                    if mask is not None:
                        logits = np.where(mask, logits, -np.inf)
                    token = int(np.argmax(logits))
                    if self._is_stop(token):
                        reason = "eos"
                        break
                    top = logits[token]
                    logprob = float(-np.log(np.exp(logits - top).sum()))
                    if logprob < min_logprob:
                        reason = "unsure"  # the model is guessing from here on
                        break
                    tokens.append(token)
                    logprobs.append(logprob)
                    piece = bytes(self.llm.detokenize([token]))
                    remaining = remaining[len(piece) :] if remaining.startswith(piece) else b""
                    mask = self._healing_mask(remaining) if remaining else None
                    # The rule judges whole lines only: without a new line end, no new cut.
                    line_end = answer.add(piece)
                    ends.append(answer.length)
                    if line_end and rule.cut(answer.text()) is not None:
                        reason = "block" if rule.multiline else "line"
                        break
                    if cancel.is_set():
                        raise _Stopped("cancelled")
                    if deadline.expired:
                        raise _Stopped("max_time")
                    if len(tokens) < request.max_tokens:
                        self.llm.eval([token])
            except _Stopped as stop:
                reason = str(stop)
            self.last_tokens = tokens
        text = answer.final()
        if reason in ("block", "line"):
            cut = rule.cut(text)
            text = text[:cut] if cut is not None else text
        final = "" if reason == "cancelled" else finish_text(text, request, rule)
        gate_score = None
        if final and self.gate is not None:
            x = features(
                prefix=request.prefix,
                suffix=request.suffix,
                text=final,
                logprobs=logprobs,
                language=request.language,
            )
            show, gate_score = apply(self.gate, x)
            if not show:
                final, reason = "", "gated"  # likely rejected: show nothing
        return Completion(
            candidates=[final] if final else [],
            source=self.kind,
            model=self.model,
            latency_ms=deadline.elapsed_ms(),
            prompt_tokens=len(prompt),
            completion_tokens=len(tokens),
            stop_reason=reason,
            reused_tokens=reused,
            raw_text=text,
            token_logprobs=logprobs,
            token_ends=ends,
            gate_score=gate_score,
        )

    def raw_complete(self, prompt: str, max_tokens: int, stop: list[str]) -> dict[str, Any]:
        """A plain greedy text completion (edit requests' prompts): text and token counts."""
        with self._lock:
            self._state_key = None  # the cache now holds this prompt, not a file's
            out: Any = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stop=stop)
        usage = out.get("usage") or {}
        return {
            "text": str(out["choices"][0]["text"]),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
        }

    def evaluated_tokens(self) -> list[int]:
        """The token ids in the KV cache now: the last prompt and what was generated after it."""
        return [int(t) for t in self.llm.input_ids[: self.llm.n_tokens]]

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "path": str(self.model_path),
            "adapter": str(self.adapter_path) if self.adapter_path else None,
            "template": self.fim.template if self.fim is not None else None,
            "prompt": self.prompt_mode,
            "heal": self.profile.heal,
            "min_token_prob": self.min_token_prob,
            "gate": self.gate.info if self.gate is not None else None,
            "n_ctx": self.n_ctx,
            "prompt_cap": self.prompt_cap,
            "repack": self.repack.as_dict(),
        }

    def close(self) -> None:
        with self._lock:
            self.llm.close()
        if self.disk is not None:
            self.disk.close()
