"""Typed settings, as the editor sends them.

Settings arrive in `initializationOptions` and again, whole or in part, in
`workspace/didChangeConfiguration`. The extension's `package.json` is the one source of
truth for their names, types, enums, minimums and defaults; tests read it to keep this
module in step. Each setting is checked on its own: a wrong one (`{"local": {"model": 5}}`)
is reported by name and replaced by its default, and the others still apply.
The frontier API key is held in memory only: `redacted()` is what logs and the store see.
"""

from __future__ import annotations

from typing import Any

import attrs

from goldiff.protocol import MODES, PROVIDERS, as_plain, camel, converter, structure
from goldiff.sources.repack import REPACK_SETTINGS

# Terminal commands that run a coding agent: their file changes become the agent's proposals.
DEFAULT_AGENTS: tuple[str, ...] = ("claude", "codex", "aider", "gemini", "goose", "opencode", "cursor-agent")
DEFAULT_EXCLUDES: tuple[str, ...] = (".env*", "*.pem", "*.key", "id_*", "*secret*", ".git/")


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
    endpoint: str | None = None  # a team's OpenAI-compatible model server, used instead of the model
    # llama.cpp threads in the engine process; 0: half the cores to generate, all for prompts
    threads: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    # The engine process's address-space limit (RLIMIT_AS), in MiB; 0: no limit. A model that
    # would need more fails to load (reported) instead of pushing the machine into swap.
    max_memory_mb: int = attrs.field(default=8192, validator=attrs.validators.ge(0))
    # llama.cpp's repacked kernels in the engine process: "auto" uses them for a model of a type
    # they measured faster for, unless they faulted for it on this CPU (`sources/repack.py`).
    repack: str = attrs.field(default="auto", validator=attrs.validators.in_(REPACK_SETTINGS))


@attrs.define
class Settings:
    mode: str = attrs.field(default="local", validator=attrs.validators.in_(MODES))
    capture: CaptureSettings = attrs.field(factory=CaptureSettings)
    frontier: FrontierSettings = attrs.field(factory=FrontierSettings)
    local: LocalSettings = attrs.field(factory=LocalSettings)
    # Idle time after a save before a suggestion's gold is taken.
    settle_seconds: float = attrs.field(default=10.0, validator=attrs.validators.ge(1))
    agents: list[str] = attrs.field(factory=lambda: list(DEFAULT_AGENTS))  # coding agent commands

    def excludes(self) -> list[str]:
        return [*DEFAULT_EXCLUDES, *self.capture.exclude]

    def redacted(self) -> dict[str, Any]:
        """The settings as logs may show them: the API key replaced by whether one is set."""
        data: dict[str, Any] = converter.unstructure(self)
        data["frontier"]["apiKey"] = "set" if self.frontier.api_key else None
        return data


for _cls in (CaptureSettings, FrontierSettings, LocalSettings, Settings):
    attrs.resolve_types(_cls)  # field types as classes, not strings, for the checks below


def read_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Merge `raw` (camelCase JSON from the client) over `base`, setting by setting.

    Returns the settings and one sentence per wrong setting, naming it and the default
    used in its place. Clients often nest our settings under a `goldiff` key (VS Code's
    configuration section); both shapes are accepted. Keys the server does not use (the
    extension's own, such as `pythonPath`) are ignored; `null` means the default.
    """
    base = base or Settings()
    plain = as_plain(raw)
    if plain is None:
        return base, []
    if not isinstance(plain, dict):
        return base, [f"Goldiff settings must be a JSON object, not {type(plain).__name__}; ignored"]
    if isinstance(plain.get("goldiff"), dict):
        plain = plain["goldiff"]
    merged: dict[str, Any] = converter.unstructure(base)
    problems: list[str] = []
    _merge_checked(merged, plain, Settings, "goldiff", problems)
    return structure(merged, Settings), problems  # every field was checked on its own


def _merge_checked(
    into: dict[str, Any], new: dict[str, Any], cls: type, prefix: str, problems: list[str]
) -> None:
    defaults = converter.unstructure(cls())
    fields = {camel(f.name): f for f in attrs.fields(cls)}
    for key, value in new.items():
        field = fields.get(key)
        if field is None:
            continue
        name = f"{prefix}.{key}"
        nested = isinstance(field.type, type) and attrs.has(field.type)
        if value is None:
            into[key] = defaults[key]
        elif nested and isinstance(value, dict):
            _merge_checked(into[key], value, field.type, name, problems)
        elif nested:
            problems.append(f"setting {name} must be an object, not {_short(value)}; using its defaults")
            into[key] = defaults[key]
        else:
            try:
                checked = converter.structure(value, field.type)
                if field.validator is not None:
                    field.validator(None, field, checked)
            except Exception as exc:
                # attrs validators raise ValueError(message, attribute, ...): the message is enough.
                reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
                reason = reason.split("\n")[0][:120] or type(exc).__name__
                default = "unset" if defaults[key] is None else _short(defaults[key])
                problems.append(
                    f"setting {name} = {_short(value)} is invalid ({reason}); using the default ({default})"
                )
                into[key] = defaults[key]
            else:
                into[key] = converter.unstructure(checked)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
