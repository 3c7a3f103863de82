"""Whether the engine may load a model with llama.cpp's repacked kernels: decided by faults seen.

llama.cpp repacks some weight types into faster layouts while loading (`llamacpp.py`), and
on some CPUs that repack, or the first computation on its result, faults (an AMX repack of a
Q6_K `token_embd.weight` dies with SIGSEGV). Which (model, llama.cpp, CPU) combinations fault
cannot be known in advance, so it is learned: the engine worker loads with repacking on
(`goldiff.local.repack` "auto"), and if it dies by a fault signal while loading or before its
first answer, `WorkerSource` writes a record here and loads that model without repacking
from then on, on this machine, until llama-cpp-python or the CPU changes.

The records are one small JSON file under the Goldiff home (`cache/repack-faults.json`),
written whole (write, then rename). A record's key is the model file (resolved path, size,
modification time), the llama-cpp-python version and the CPU's feature flags; its value says
what faulted and when, for `goldiff doctor` and for people. Nothing here imports llama_cpp.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import mmap
import platform
import signal
import struct
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from goldiff.home import write_whole
from goldiff.sources.states import model_identity

log = logging.getLogger(__name__)

REPACK_SETTINGS = ("auto", "off")
# The model file types (`general.file_type`, llama.cpp's `llama_ftype`) whose repacked kernels
# `bench/bench_repack.py` measured faster on this project's machines (AVX-512, no AMX): prompt
# evaluation 0.58x (Q4_0) and 0.69x (IQ4_NL) of the plain kernels' time. Every other type
# Goldiff writes or ships measured no faster: nothing of it repacked (Q8_0, Q5_K_M, Q6_K, F16)
# or slower (Q4_K_M, 1.16x). "auto" repacks only these: a possible fault (an AMX repack of a
# Q6_K weight is a known one) for no measured gain is not worth it.
FASTER_REPACKED = {2: "Q4_0", 25: "IQ4_NL"}
# Signals by which native code dies on its own fault. SIGKILL and SIGTERM come from outside
# (a user, the out-of-memory killer, the server's own hang kill): no sign of a bad kernel.
FAULT_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT})


def faults_path(home: Path) -> Path:
    return home / "cache" / "repack-faults.json"


def is_fault(returncode: int | None) -> bool:
    """Whether a process that exited with `returncode` was killed by its own native fault."""
    return returncode is not None and returncode < 0 and -returncode in {int(s) for s in FAULT_SIGNALS}


# GGUF metadata value types (gguf.GGUFValueType) and the byte size of the fixed-size ones.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def file_type(model: Path) -> int | None:
    """The GGUF's `general.file_type`, read from its header alone; None if it has none.

    `gguf.GGUFReader` parses every tensor's description as well (seconds for a 100 MB model);
    this walks the metadata only, on the engine's start path.
    """
    try:
        with model.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[:4] != b"GGUF":
                return None
            (count,) = struct.unpack_from("<Q", buf, 16)
            at = 24

            def skip(kind: int, at: int) -> int:
                if kind in _FIXED:
                    return at + _FIXED[kind]
                if kind == _STRING:
                    return at + 8 + int(struct.unpack_from("<Q", buf, at)[0])
                item, n = (int(v) for v in struct.unpack_from("<IQ", buf, at))
                at += 12
                if item in _FIXED:
                    return at + n * _FIXED[item]
                for _ in range(n):
                    at = skip(item, at)
                return at

            for _ in range(count):
                (length,) = struct.unpack_from("<Q", buf, at)
                key = bytes(buf[at + 8 : at + 8 + length])
                (kind,) = struct.unpack_from("<I", buf, at + 8 + length)
                at += 12 + length
                if key == b"general.file_type" and kind in (4, 5):
                    return int(struct.unpack_from("<I" if kind == 4 else "<i", buf, at)[0])
                at = skip(kind, at)
    except (OSError, ValueError, struct.error, RecursionError):
        return None
    return None


def worth_repacking(model: Path) -> bool:
    """Whether "auto" loads `model` with repacked kernels: its type measured faster with them."""
    return file_type(model) in FASTER_REPACKED


@functools.cache
def cpu_id() -> str:
    """A hash of the CPU's feature flags (what llama.cpp picks its kernels by)."""
    flags = f"{platform.machine()} {platform.processor()}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):  # x86, ARM
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    return hashlib.sha256(flags.encode()).hexdigest()[:16]


@functools.cache
def llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:  # pragma: no cover - the engine would not load either
        return "unknown"


def fault_key(model: Path) -> str:
    """The identity a fault record is kept under: this model file, llama.cpp build and CPU."""
    try:
        st = model.stat()
        parts = [str(model.resolve()), st.st_size, st.st_mtime_ns]
    except OSError:
        parts = [str(model)]
    parts += [llama_cpp_version(), cpu_id()]
    return model_identity(*parts)


class FaultRecords:
    """The repack fault records in one file; `path=None` keeps them in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[str, Any] = {}

    def read(self) -> dict[str, Any]:
        """Every record: the file's, and those added here (written to it or not)."""
        data: Any = {}
        if self.path is not None:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(self.path.read_text())
        # None yet, or unreadable: no fault known (a fault writes it again).
        return {**(data if isinstance(data, dict) else {}), **self._memory}

    def get(self, model: Path) -> dict[str, Any] | None:
        record = self.read().get(fault_key(model))
        return record if isinstance(record, dict) else None

    def add(self, model: Path, why: str) -> dict[str, Any]:
        """Record that repacking `model` faulted (`why`: the signal and the moment)."""
        record = {
            "model": str(model),
            "llama_cpp": llama_cpp_version(),
            "cpu": cpu_id(),
            "fault": why,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        # Kept here as well: with no file, or one that cannot be written, the engine still
        # loads without repacking this time.
        self._memory[fault_key(model)] = record
        if self.path is not None:
            data = self.read()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_whole(self.path, ".repack-faults.", json.dumps(data, indent=1, sort_keys=True).encode())
            except OSError as exc:
                log.warning("cannot write the repack fault record %s: %s", self.path, exc)
        return record
