"""The local engine in a child process, so that no native fault can stop capture.

llama.cpp is native code: a CPU feature it mishandles, a corrupt GGUF, an out-of-memory
abort or a bug ends the process it runs in with a signal Python cannot catch. The
language server therefore never loads it itself. `WorkerSource` (a `CompletionSource`)
starts `python -m goldiff.sources.worker`, which loads one `LocalSource` and keeps it warm
(prefix reuse and file states live there), and talks to it over the child's stdin and
stdout, one JSON object per line:

    server → worker   {"op": "complete", "id": 7, "request": {...CompletionRequest}}
                      {"op": "cancel", "id": 7}
                      {"op": "raw", "id": 8, "prompt": "...", "max_tokens": 256, "stop": [...]}
    worker → server   {"op": "ready", "describe": {...}} | {"op": "error", "message": "..."}
                      {"id": 7, "phase": "prefill" | "generate"}
                      {"id": 7, "completion": {...Completion, every field: token_logprobs,
                                               gate_score, stop_reason "unsure" | "gated"}}
                      {"id": 8, "raw": {"text": ..., "prompt_tokens": ..., "completion_tokens": ...}}

When no request is waiting, the worker writes the current file's evaluated state to the
state folder it was given (`states.py`), so the engine that replaces it after a crash starts
that file warm. A cancel message sets the request's event in the worker, which stops
within one token (or one prompt chunk). If the worker dies (EOF on its stdout) the pending request fails
with `EngineError`; if it does not answer within the request's budget plus
`HANG_GRACE_SECONDS` it is killed and the request fails the same way. Either way the next
worker starts in the background after a backoff that doubles with each consecutive
failure (`BACKOFF_SECONDS` up to `BACKOFF_MAX_SECONDS`) and resets on a success. A worker
that dies while loading is a `ModelLoadError`: the model, not the moment, is at fault.

The worker is the one process that may load with llama.cpp's repacked kernels (extra buffer
types, `llamacpp.py`), which fault on some CPUs: `repack` "auto" asks for them for a model
of a type they measured faster for (`repack.FASTER_REPACKED`), unless a fault record
(`repack.py`) says this model faulted on this CPU and llama.cpp before. A worker that
dies by a fault signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT: not a kill from outside)
while loading with them, or before its first answer when llama.cpp did repack some of its
weights, leaves such a record, and the next worker (at once, for a death while loading)
loads without them; the user is told once. "off" never asks. `describe()["repackMode"]`
says which way it runs.

The worker limits itself before it imports llama_cpp: `RLIMIT_AS` from `local.maxMemoryMb`
and llama.cpp's threads from `local.threads`. Its stdout is kept for the protocol (fd 1 is
pointed at stderr, where llama.cpp logs), and it exits when its stdin closes: when the
server exits or dies. (Not PR_SET_PDEATHSIG: that fires when the *thread* that started the
worker ends, and the background restart's thread ends at once.)

Importing this module does not import llama_cpp; only the child process does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from goldiff.errors import EngineError, ModelLoadError
from goldiff.sources.base import Completion, CompletionRequest, RecentEdit, Snippet
from goldiff.sources.llamacpp import checked_model
from goldiff.sources.repack import FaultRecords, is_fault, worth_repacking

log = logging.getLogger(__name__)

HANG_GRACE_SECONDS = 5.0  # past the request's own budget before a silent worker is killed
LOAD_TIMEOUT_SECONDS = 120.0  # a model that takes longer to load is reported as failed
BACKOFF_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 30.0
POLL_SECONDS = 0.005  # how often a waiting request looks at its cancel event
RAW_MAX_SECONDS = 30.0  # an edit request's budget in the worker


@dataclasses.dataclass
class _Pending:
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None  # the worker's "completion" or "raw"
    error: str | None = None
    phase: str = "queued"


class WorkerSource:
    """A `LocalSource` in a child process, restarted when it dies or hangs."""

    kind = "local"

    def __init__(
        self,
        model_path: str | Path,
        *,
        adapter_path: str | Path | None = None,
        name: str | None = None,
        threads: int = 0,
        max_memory_mb: int = 0,
        gate: str | Path | None = None,
        on_crash: Callable[[str], None] | None = None,
        cold_seconds: float | None = None,
        state_dir: str | Path | None = None,
        repack: str = "auto",
        faults: str | Path | None = None,
    ) -> None:
        self.model_path, self.adapter_path, self.model = checked_model(model_path, adapter_path, name)
        # Repack fault records (`repack.py`): the Goldiff home's file, shared by every engine
        # on this machine; None keeps them for this source only.
        self.faults = FaultRecords(Path(faults) if faults else None)
        self.repack_setting = repack
        # Asked for only where they measured faster for this model's type (`FASTER_REPACKED`).
        self.repack_worth = repack == "auto" and worth_repacking(self.model_path)
        self.repack_fault: dict[str, Any] | None = (
            self.faults.get(self.model_path) if self.repack_worth else None
        )
        # The child's `LocalSource` arguments (None: its default), and its memory limit.
        self.config = {
            "model_path": str(self.model_path),
            "adapter_path": str(self.adapter_path) if self.adapter_path else None,
            "name": self.model,
            "n_threads": threads or None,
            "max_memory_mb": max_memory_mb,
            "cold_seconds": cold_seconds,
            "gate": str(gate) if gate else None,
            # Where the engine keeps file states across its own restarts (`states.py`).
            "state_dir": str(state_dir) if state_dir else None,
        }
        self.on_crash = on_crash or (lambda message: None)
        self.restarts = 0  # workers started after the first
        self.last_restart_ms: float | None = None  # death noticed → new worker ready
        self.info: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._start_lock = threading.Lock()  # one start at a time
        self._send_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: dict[int, _Pending] = {}
        self._failures = 0
        self._retry_at = 0.0
        self._died_at: float | None = None
        self._closed = False
        self._proc_repack = False  # whether the running worker loaded with repacked kernels
        self._start()

    # ------------------------------------------------------------------ process

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> None:
        """Start a worker and wait until its model is loaded (ModelLoadError if it is not)."""
        # What this worker loads with: until repacking faults for this model.
        repack = self.repack_worth and self.repack_fault is None
        proc = subprocess.Popen(
            [sys.executable, "-m", "goldiff.sources.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # llama.cpp's log joins the server's own
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._send(proc, {**self.config, "repack": repack})  # if it died at once, the read below says how
        ready: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(
            target=self._read, args=(proc, ready), name="goldiff-engine-reader", daemon=True
        ).start()
        try:
            first = ready.get(timeout=LOAD_TIMEOUT_SECONDS)
        except queue.Empty:
            first = {"op": "error", "message": f"it did not load within {LOAD_TIMEOUT_SECONDS:.0f} s"}
        if first is None or first.get("op") != "ready":
            proc.kill()  # a no-op once it exited (Popen checks)
            proc.wait()
            reason = _exit_reason(proc.returncode)
            if first is None and repack and is_fault(proc.returncode):
                # It faulted while loading with repacked kernels: the fault is the kernels', not
                # the model's. Recorded, it is started again at once without them.
                message = self._repack_faulted(f"{reason} while loading it")
                self.on_crash(f"the local model's engine stopped ({reason}) while loading: {message}")
                return self._start()
            died = f"the engine process died while loading it ({reason})"
            why = died if first is None else first.get("message")
            raise ModelLoadError(f"llama.cpp could not load {self.model_path}: {why}")
        self.info = dict(first.get("describe") or {})
        self._proc = proc
        # Whether a fault of this worker may be the repacked kernels': it asked for them and
        # llama.cpp did repack something (with nothing repacked, the two ways are the same).
        done = self.info.get("repack") or {}
        self._proc_repack = repack and bool(done.get("tensors") or done.get("buffers"))
        log.info("local engine for %s: %s", self.model, self.repack_mode())

    def repack_mode(self) -> str:
        """How the running worker loaded its model, in words (status, doctor, logs)."""
        if self.repack_setting == "off":
            return "plain kernels (goldiff.local.repack is off)"
        if self.repack_fault is not None:
            return f"plain kernels (repacked ones faulted here: {self.repack_fault.get('fault')})"
        if not self.repack_worth:
            return "plain kernels (repacked ones measured no faster for this model's type)"
        done = self.info.get("repack") or {}
        if not done.get("tensors"):
            return "plain kernels (llama.cpp repacks none of this model's weights on this CPU)"
        buffers = ", ".join(done.get("buffers") or []) or "repacked"
        return f"repacked kernels ({done['tensors']} weights in {buffers})"

    def _repack_faulted(self, why: str) -> str:
        """Record that repacking faulted for this model; later workers load without it."""
        self.repack_fault = self.faults.add(self.model_path, why)
        log.warning("repacked kernels faulted for %s (%s); recorded in %s", self.model, why, self.faults.path)
        return (
            f"llama.cpp's faster kernels crashed on this CPU for {self.model}; "
            "Goldiff now loads it without them"
        )

    def _read(self, proc: subprocess.Popen[bytes], ready: queue.Queue[dict[str, Any] | None]) -> None:
        """Route the worker's messages to their requests until it exits."""
        assert proc.stdout is not None
        loaded = answered = False
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not loaded:
                loaded = message.get("op") == "ready"
                ready.put(message)
                continue
            answer = message.get("completion", message.get("raw"))
            answered = answered or answer is not None
            pending = self._pending.get(int(message.get("id", -1)))
            if pending is None:
                continue
            if "phase" in message:
                pending.phase = str(message["phase"])
            elif answer is not None:
                pending.answer = dict(answer)
                pending.done.set()
            elif "error" in message:
                pending.error = str(message["error"])
                pending.done.set()
        proc.wait()
        if not loaded:
            ready.put(None)
            return
        if proc is self._proc and not self._closed:
            # A fault before the first answer of a worker running repacked kernels is theirs
            # (the repack itself, or the first computation with them) until shown otherwise.
            reason = _exit_reason(proc.returncode)
            repack_fault = self._proc_repack and not answered and is_fault(proc.returncode)
            self._on_death(proc, f"stopped ({reason})", reason if repack_fault else None)

    def _on_death(self, proc: subprocess.Popen[bytes], why: str, repack_fault: str | None = None) -> None:
        with self._start_lock:
            if proc is not self._proc:
                return  # already handled (a hang kill, then its EOF)
            self._proc = None
            if repack_fault is not None:  # before the restart below reads it
                why = f"{why}: {self._repack_faulted(f'{repack_fault} before its first answer')}"
        self._died_at = time.perf_counter()
        self._failures += 1
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay
        message = f"the local model's engine {why}; restarting it"
        log.warning("%s (in %.2fs)", message, delay)
        self.on_crash(message)  # before the request fails: the user hears why first
        for pending in list(self._pending.values()):
            pending.error = why
            pending.done.set()
        timer = threading.Timer(delay, self._restart_quietly)
        timer.daemon = True
        timer.start()

    def _restart_quietly(self) -> None:
        try:
            self._ensure_running(backoff_over=True)
        except (ModelLoadError, EngineError) as exc:
            log.warning("restarting the local engine failed: %s", exc)

    def _ensure_running(self, backoff_over: bool = False) -> subprocess.Popen[bytes]:
        with self._start_lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                return proc
            if self._closed:
                raise EngineError("the local engine is closed")
            left = self._retry_at - time.monotonic()
            if left > 0 and not backoff_over:
                raise EngineError(f"the local model's engine restarts in {left:.1f} s")
            self._start()
            self.restarts += 1
            if self._died_at is not None:
                self.last_restart_ms = (time.perf_counter() - self._died_at) * 1000.0
                self._died_at = None
            assert self._proc is not None
            return self._proc

    def _send(self, proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        with self._send_lock, contextlib.suppress(OSError, ValueError):  # it is dying: its reader says so
            proc.stdin.write((json.dumps(message) + "\n").encode())
            proc.stdin.flush()

    # ------------------------------------------------------------------ source

    def _ask(self, message: dict[str, Any], max_seconds: float, cancel: threading.Event) -> dict[str, Any]:
        """Send `message` to the worker and wait for its answer, its death or its deadline."""
        proc = self._ensure_running()
        rid = next(self._ids)
        pending = self._pending[rid] = _Pending()
        try:
            self._send(proc, {**message, "id": rid})
            hang_at = time.monotonic() + max_seconds + HANG_GRACE_SECONDS
            cancel_sent = False
            while not pending.done.wait(POLL_SECONDS):
                if cancel.is_set() and not cancel_sent:
                    self._send(proc, {"op": "cancel", "id": rid})
                    cancel_sent = True
                if time.monotonic() > hang_at:
                    proc.kill()
                    self._on_death(proc, f"did not answer within {max_seconds:.1f} s (killed)")
                    break
        finally:
            self._pending.pop(rid, None)
        if pending.answer is None:
            raise EngineError(f"the local model's engine {pending.error or 'failed'}")
        self._failures = 0
        return pending.answer

    def complete(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Completion:
        message = {"op": "complete", "request": dataclasses.asdict(request)}
        answer = self._ask(message, request.max_seconds, cancel or threading.Event())
        known = {f.name for f in dataclasses.fields(Completion)}
        return Completion(**{k: v for k, v in answer.items() if k in known})

    def raw_complete(self, prompt: str, max_tokens: int, stop: list[str]) -> dict[str, Any]:
        """A plain greedy text completion in the worker (edit requests): text and token counts."""
        message = {"op": "raw", "prompt": prompt, "max_tokens": max_tokens, "stop": stop}
        return self._ask(message, RAW_MAX_SECONDS, threading.Event())

    def describe(self) -> dict[str, Any]:
        return {
            **self.info,
            "pid": self.pid,
            "restarts": self.restarts,
            "lastRestartMs": self.last_restart_ms,
            # What the oldest pending request is doing in the worker (tests, status).
            "phase": next((pending.phase for pending in list(self._pending.values())), None),
            "repackSetting": self.repack_setting,
            "repackMode": self.repack_mode(),
            "repackFault": self.repack_fault,
        }

    def close(self) -> None:
        with self._start_lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()  # the worker exits at EOF
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _exit_reason(code: int) -> str:
    """Why a worker that has exited (and been waited for) exited."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


# ---------------------------------------------------------------------- the child


def serve(stdin: IO[bytes], out: IO[bytes]) -> None:
    """The worker's main loop: load the model, then answer requests until stdin closes."""
    config = json.loads(stdin.readline() or b"{}")
    write_lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        with write_lock:
            out.write((json.dumps(message) + "\n").encode())
            out.flush()

    limit = int(config.pop("max_memory_mb", 0) or 0) * 1024 * 1024
    if limit > 0:
        import resource

        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        from goldiff.sources.local import LocalSource

        # `repack`: this is the only process that may; its fault ends it, not capture
        # (`repack.py`). The protocol is not on fd 1 here, so llama.cpp may load without
        # its hundreds of log lines landing in the editor's output channel.
        source = LocalSource(**{k: v for k, v in config.items() if v is not None}, verbose=False)
    except Exception as exc:
        send({"op": "error", "message": str(exc) or type(exc).__name__})
        return
    send({"op": "ready", "describe": source.describe()})

    work: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancels: dict[int, threading.Event] = {}

    def read() -> None:
        for line in stdin:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            rid = int(message.get("id", -1))
            event = cancels.setdefault(rid, threading.Event())
            if message.get("op") == "cancel":
                event.set()
            elif message.get("op") in ("complete", "raw"):
                work.put(message)
        # The server closed our stdin (it exited, or died): stop what runs, then exit.
        for event in list(cancels.values()):
            event.set()
        work.put(None)

    threading.Thread(target=read, name="goldiff-worker-reader", daemon=True).start()
    while (message := work.get()) is not None:
        rid = int(message["id"])
        cancel = cancels.setdefault(rid, threading.Event())
        source.on_phase = lambda phase, rid=rid: send({"id": rid, "phase": phase})  # type: ignore[misc]
        try:
            if message["op"] == "raw":
                raw = source.raw_complete(
                    message["prompt"], int(message["max_tokens"]), list(message["stop"])
                )
                send({"id": rid, "raw": raw})
            else:
                data = message["request"]  # a CompletionRequest, as dataclasses.asdict sent it
                data["recent_edits"] = [RecentEdit(**e) for e in data.get("recent_edits", [])]
                data["snippets"] = [Snippet(**s) for s in data.get("snippets", [])]
                completion = source.complete(CompletionRequest(**data), cancel)
                send({"id": rid, "completion": dataclasses.asdict(completion)})
        except Exception as exc:
            log.exception("completion failed")
            send({"id": rid, "error": f"failed: {exc}"})
        finally:
            cancels.pop(rid, None)
        if work.empty():
            # Idle: keep the current file's state on disk for a restart, if worth it.
            try:
                source.checkpoint()
            except Exception:
                log.exception("keeping the file state failed")
    source.close()


def main() -> None:
    # fd 1 is the protocol; anything native code prints goes to stderr instead.
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, format="goldiff-engine %(levelname)s %(message)s")
    serve(sys.stdin.buffer, protocol)


if __name__ == "__main__":
    main()
