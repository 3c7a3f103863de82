"""The deterministic in-repo source, for tests only: rules instead of a model.

Each rule says "when the text before the cursor ends with AFTER, suggest TEXT"; the
longest matching AFTER wins, and `default` (if any) answers everything else. The same
rules give the same suggestion every time, with no model and no network, so tests of the
outcome lifecycle, replay and export can script exactly what was suggested.

A server selects it with a model spec `test:` followed by the rules, either inline JSON
or the path of a JSON file: `{"rules": [{"after": "def add(a, b):\\n    ", "text":
"return a + b"}], "default": null}`. It can stand in for the local model
(`local.model`) or for the frontier (`frontier.model`), so every mode can be tested.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from goldiff.errors import ConfigError
from goldiff.sources.base import Completion, CompletionRequest, Deadline, finish_text

SPEC_PREFIX = "test:"


class DeterministicSource:
    def __init__(self, rules: list[tuple[str, str]], *, default: str | None, kind: str, model: str) -> None:
        # Longest AFTER first, so a specific rule beats a general one.
        self.rules = sorted(rules, key=lambda r: -len(r[0]))
        self.default = default
        self.kind = kind
        self.model = model

    @classmethod
    def from_spec(cls, spec: str, *, kind: str) -> DeterministicSource:
        """Build from `test:` + inline JSON or a JSON file path (see the module docstring)."""
        data = read_spec(
            spec, '. Use test:{"rules": [{"after": "...", "text": "..."}]} or test:/path/rules.json'
        )
        if not isinstance(data, dict):
            raise ConfigError("the test source rules must be a JSON object with a 'rules' list")
        rules = [(str(r["after"]), str(r["text"])) for r in data.get("rules", [])]
        return cls(rules, default=data.get("default"), kind=kind, model=data.get("model", "deterministic"))

    def complete(self, request: CompletionRequest, cancel: threading.Event | None = None) -> Completion:
        deadline = Deadline(request.max_seconds)
        raw = next((t for after, t in self.rules if request.prefix.endswith(after)), self.default) or ""
        final = finish_text(raw, request)
        return Completion(
            candidates=[final] if final else [],
            source=self.kind,
            model=self.model,
            latency_ms=deadline.elapsed_ms(),
            prompt_tokens=len(request.prefix) + len(request.suffix),
            completion_tokens=len(raw),
            stop_reason="cancelled" if cancel is not None and cancel.is_set() else "rule",
            raw_text=raw,
        )

    def close(self) -> None:
        pass


def read_spec(spec: str, hint: str = "") -> Any:
    """The rules of a `test:` spec: its inline JSON, or the JSON file it names ({} for none)."""
    body = spec[len(SPEC_PREFIX) :].strip()
    if not body:
        return {}
    try:
        return json.loads(body if body.lstrip().startswith("{") else Path(body).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the test source rules {body!r}: {exc}{hint}") from exc


def is_test_spec(spec: str | None) -> bool:
    return spec is not None and spec.startswith(SPEC_PREFIX)
