"""Bad input: keystroke handling and pauses on odd documents, and a 10,000-message fuzz.

Typing at the end of a document whose one line is very long (minified code, a data blob,
with or without spaces) is compared with typing in an ordinary file: the didChange p99
(the server's own handling time, `goldiff.serverStats`) and the longest round trip of a
ping sent every ten keystrokes (what a user would feel as a freeze; the writer thread's
redaction counts here, since it shares the GIL). Opening the document is not timed.
The fuzz is `tests/test_fuzz_stream.py`'s, one seed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.lsp_client import server_env, utf16_pos
from tests.pipe_client import PipeClient
from tests.test_fuzz_stream import Fuzzer

KEYS = 300
TEST_MODEL = 'test:{"rules": [], "default": "pass"}'


def _typing(home: Path, text: str) -> tuple[float, float]:
    """(didChange p99 ms, longest ping s) for KEYS characters typed at the end of `text`."""
    client = PipeClient([sys.executable, "-m", "goldiff", "serve"], server_env(home))
    client.initialize({"capture": {"enabled": True}, "local": {"model": TEST_MODEL}})
    uri = "file:///bench/long.txt"
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": text}},
    )
    client.request("workspace/executeCommand", {"command": "goldiff.stats"}, timeout=600)  # open written
    longest = 0.0
    for i in range(KEYS):
        pos = utf16_pos(text, len(text))
        at = {"line": pos.line, "character": pos.character}
        char = "x" if i % 7 else " "
        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": i + 2},
                "contentChanges": [{"range": {"start": at, "end": at}, "text": char}],
            },
        )
        text += char
        if i % 10 == 9:
            sent = time.perf_counter()
            client.request("workspace/executeCommand", {"command": "goldiff.status"}, timeout=600)
            longest = max(longest, time.perf_counter() - sent)
    stats = client.request("workspace/executeCommand", {"command": "goldiff.serverStats"})
    sent = time.perf_counter()
    client.request(
        "workspace/executeCommand", {"command": "goldiff.stats"}, timeout=600
    )  # last batch written
    longest = max(longest, time.perf_counter() - sent)
    client.close()
    return float(stats["didChangeP99Ms"]), longest


def _fuzz(home: Path, seed: int = 18, messages: int = 10_000) -> dict[str, Any]:
    client = PipeClient([sys.executable, "-m", "goldiff", "serve", "--clock", "logical"], server_env(home))
    client.initialize({"capture": {"enabled": True}, "local": {"model": TEST_MODEL}})
    fuzz = Fuzzer(seed)
    requests, longest = [], 0.0
    for i in range(messages):
        data, rid = fuzz.message()
        client.write(data)
        if rid is not None:
            requests.append(rid)
        if i % 25 == 24:
            sent = time.perf_counter()
            client.request("workspace/executeCommand", {"command": "goldiff.status"}, timeout=600)
            longest = max(longest, time.perf_counter() - sent)
    client.request("workspace/executeCommand", {"command": "goldiff.stats"}, timeout=600)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not set(requests) <= client.answered():
        time.sleep(0.2)
    result = {
        "unanswered": len(set(requests) - client.answered()),
        "popups": len(client.shown()),
        "longest": longest,
        "alive": client.proc.poll() is None,
    }
    client.close()
    return result


def run() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        normal = "".join(f"    value_{i} = compute(value_{i - 1}, {i})\n" for i in range(2_000))
        base_p99, base_pause = _typing(root / "normal", normal)
        for name, line in (
            ("spaced_line_150k", ("word " * 30_000)),
            ("unspaced_line_150k", ("a" * 150_000)),
        ):
            p99, pause = _typing(root / name, line)
            entries.append(
                {
                    "name": f"keystroke_p99_{name}",
                    "value": round(p99, 3),
                    "unit": "ms",
                    "baseline": {"name": "80 KB ordinary file", "value": round(base_p99, 3)},
                    "ratio": round(p99 / base_p99, 2) if base_p99 else None,
                    "target": "< 5 ms",
                    "met": p99 < 5,
                }
            )
            entries.append(
                {
                    "name": f"longest_pause_typing_{name}",
                    "value": round(pause * 1000),
                    "unit": "ms",
                    "baseline": {"name": "80 KB ordinary file", "value": round(base_pause * 1000)},
                    "ratio": round(pause / base_pause, 2) if base_pause else None,
                    "target": "< 1000 ms",
                    "met": pause < 1.0,
                }
            )
        fuzz = _fuzz(root / "fuzz")
        entries.append(
            {
                "name": "fuzz_10k_longest_pause",
                "value": round(fuzz["longest"] * 1000),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": "< 1000 ms, 0 unanswered, <= 50 pop-ups",
                "met": fuzz["longest"] < 1.0
                and fuzz["unanswered"] == 0
                and fuzz["popups"] <= 50
                and fuzz["alive"],
                "detail": fuzz,
            }
        )
    return entries


if __name__ == "__main__":
    for entry in run():
        print(entry)
