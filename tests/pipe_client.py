"""A minimal, fast LSP client over a subprocess pipe, for benchmarks.

The test client (pytest-lsp) builds typed objects for every message and tops out near a
thousand notifications a second on this machine; a benchmark of the server's ingest
needs a client that is not the bottleneck, so this one writes pre-encoded JSON.
"""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any


class PipeClient:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self._responses: dict[int, Any] = {}
        self._cond = threading.Condition()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    @staticmethod
    def encode(message: dict[str, Any]) -> bytes:
        body = json.dumps(message, separators=(",", ":")).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = 0
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(out.read(length))
            if "id" in message and "method" not in message:
                with self._cond:
                    self._responses[message["id"]] = message
                    self._cond.notify_all()

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self.write(self.encode({"jsonrpc": "2.0", "method": method, "params": params}))

    def request(self, method: str, params: Any, timeout: float = 300) -> Any:
        self._next_id += 1
        rid = self._next_id
        self.write(self.encode({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        with self._cond:
            if not self._cond.wait_for(lambda: rid in self._responses, timeout):
                raise TimeoutError(f"no answer to {method} in {timeout}s")
            message = self._responses.pop(rid)
        if "error" in message:
            raise RuntimeError(message["error"])
        return message.get("result")

    def initialize(self, options: dict[str, Any]) -> None:
        self.request(
            "initialize",
            {"processId": None, "capabilities": {}, "rootUri": None, "initializationOptions": options},
        )
        self.notify("initialized", {})

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=60)
            self.notify("exit", None)
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
