"""Typed settings, as the editor sends them.

Settings arrive in `initializationOptions` and again, whole or in part, in
`workspace/didChangeConfiguration`. The extension's `package.json` is the one source of
truth for their names and defaults; a test reads it to keep these defaults equal.
The frontier API key is held in memory only: `redacted()` is what logs and the store see.
"""

from __future__ import annotations

from typing import Any

import attrs

from goldiff.errors import ConfigError
from goldiff.protocol import PayloadError, as_plain, converter, structure

MODES = ("frontier", "local", "shadow")
PROVIDERS = ("openai", "anthropic")

# Terminal commands that run a coding agent: their file changes become the agent's proposals.
DEFAULT_AGENTS: tuple[str, ...] = ("claude", "codex", "aider", "gemini", "goose", "opencode", "cursor-agent")
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".env*",
    "*.pem",
    "*.key",
    "id_*",
    "*secret*",
    ".git/",
)


@attrs.define
class CaptureSettings:
    enabled: bool = False  # capture is opt-in per workspace
    exclude: list[str] = attrs.field(factory=list)  # added to DEFAULT_EXCLUDES, never replacing


@attrs.define
class FrontierSettings:
    provider: str = attrs.field(default="openai", validator=attrs.validators.in_(PROVIDERS))
    base_url: str | None = None  # None: the provider's public endpoint
    model: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)


@attrs.define
class LocalSettings:
    model: str | None = None  # registry name or path to a GGUF; None: the shipped default
    adapter: str | None = None  # optional GGUF LoRA adapter on top of the model
    threads: int = (
        0  # llama.cpp threads in the engine process; 0: half the cores to generate, all for prompts
    )
    # The engine process's address-space limit (RLIMIT_AS), in MiB; 0: no limit. A model that
    # would need more fails to load (reported) instead of pushing the machine into swap.
    max_memory_mb: int = 8192


@attrs.define
class Settings:
    mode: str = attrs.field(default="local", validator=attrs.validators.in_(MODES))
    capture: CaptureSettings = attrs.field(factory=CaptureSettings)
    frontier: FrontierSettings = attrs.field(factory=FrontierSettings)
    local: LocalSettings = attrs.field(factory=LocalSettings)
    settle_seconds: float = 10.0  # idle time after a save before a suggestion's gold is taken
    agents: list[str] = attrs.field(factory=lambda: list(DEFAULT_AGENTS))  # coding agent commands

    def excludes(self) -> list[str]:
        return [*DEFAULT_EXCLUDES, *self.capture.exclude]

    def redacted(self) -> dict[str, Any]:
        """The settings as logs may show them: the API key replaced by whether one is set."""
        data: dict[str, Any] = converter.unstructure(self)
        data["frontier"]["apiKey"] = "set" if self.frontier.api_key else None
        return data


def parse_settings(raw: Any, base: Settings | None = None) -> Settings:
    """Merge `raw` (camelCase JSON from the client) over `base` and validate the result.

    Clients often nest our settings under a `goldiff` key (VS Code's configuration
    section); both shapes are accepted.
    """
    plain = as_plain(raw) or {}
    if not isinstance(plain, dict):
        raise ConfigError("Goldiff settings must be a JSON object")
    if isinstance(plain.get("goldiff"), dict):
        plain = plain["goldiff"]
    merged: dict[str, Any] = converter.unstructure(base or Settings())
    _deep_merge(merged, plain)
    try:
        return structure(merged, Settings)
    except PayloadError as exc:
        raise ConfigError(f"{exc}. Check the goldiff.* settings.") from exc


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        elif value is not None or key in into:
            into[key] = value
