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
    """Requests wait for their answer; what the server sends unasked is kept in `notifications`.

    `stderr` is where the server's log goes (DEVNULL unless a test wants to read it).
    """

    def __init__(self, command: list[str], env: dict[str, str], stderr: Any = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
        )
        self._responses: dict[int | str, Any] = {}
        self._cond = threading.Condition()
        self._next_id = 0
        self.notifications: list[dict[str, Any]] = []
        self._write_lock = threading.Lock()
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
            elif "method" in message:
                with self._cond:
                    self.notifications.append(message)
                if "id" in message:  # a request from the server (applyEdit, progress): say no
                    error = {"code": -32601, "message": "not supported by this client"}
                    self.write(self.encode({"jsonrpc": "2.0", "id": message["id"], "error": error}))

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        with self._write_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self.write(self.encode({"jsonrpc": "2.0", "method": method, "params": params}))

    def send(self, method: str, params: Any) -> int:
        """Send a request without waiting; `answer(id)` waits for it."""
        self._next_id += 1
        self.write(self.encode({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}))
        return self._next_id

    def answer(self, rid: int | str, timeout: float = 300) -> dict[str, Any]:
        """The whole response message to request `rid` (result or error)."""
        with self._cond:
            if not self._cond.wait_for(lambda: rid in self._responses, timeout):
                raise TimeoutError(f"no answer to request {rid} in {timeout}s")
            message: dict[str, Any] = self._responses.pop(rid)
        return message

    def answered(self) -> set[int | str]:
        """Ids answered so far and not yet taken by `answer`."""
        with self._cond:
            return set(self._responses)

    def request(self, method: str, params: Any, timeout: float = 300) -> Any:
        rid = self.send(method, params)
        try:
            message = self.answer(rid, timeout)
        except TimeoutError:
            raise TimeoutError(f"no answer to {method} in {timeout}s") from None
        if "error" in message:
            raise RuntimeError(message["error"])
        return message.get("result")

    def shown(self) -> list[dict[str, Any]]:
        """The window/showMessage notifications received so far (what pops up)."""
        with self._cond:
            return [m for m in self.notifications if m["method"] == "window/showMessage"]

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
