"""The model registry: named local models and adapters, their lineage, and the default.

`home/models/registry.json` maps names to GGUF files (models, or LoRA adapters with the
base they apply to) and records which one is the default. Distillation registers what it
produces with its lineage (base, export id, recipe, metrics); `goldiff models use NAME`
makes one the default, and a running server picks the change up on its next request
(it re-reads the file when it changes), so switching needs no editor restart.

The model shipped with Goldiff (`models/goldiff-default*.gguf` next to `server/`, or
`$GOLDIFF_DEFAULT_MODEL`) is listed as `goldiff-default` and is the default until the
user chooses another.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from goldiff.errors import ConfigError, ModelLoadError
from goldiff.home import models_dir, write_whole

DEFAULT_MODEL_ENV = "GOLDIFF_DEFAULT_MODEL"
SHIPPED_NAME = "goldiff-default"
KINDS = ("model", "adapter")


def repo_models_dir() -> Path:
    """`models/` at the repository root (server/goldiff/sources/ → three levels up)."""
    return Path(__file__).resolve().parents[3] / "models"


def package_models_dir() -> Path:
    """`goldiff/models/` inside an installed wheel, which ships the default model as package data."""
    return Path(__file__).resolve().parents[1] / "models"


# The shipped default is the project's own model, served with its measured profile
# (models/goldiff-default-Q6_K.serve.json, shipped beside it): on rest-of-line cases from
# code it never saw it matched the pretrained SmolLM2-135M's accept proxy at an eighth of
# its latency (models/README.md). SmolLM2 can be fetched (`python -m goldiff.sources.shipped`)
# and chosen with `goldiff models use`.


def own_model_path() -> Path | None:
    """The project's own model, `goldiff-default*.gguf` in the installed package's `models/`
    (a wheel) or the repository's `models/` (a checkout): the base distillation trains."""
    found: list[Path] = []
    for folder in (package_models_dir(), repo_models_dir()):
        found = sorted(folder.glob("goldiff-default*.gguf"))
        if found:
            break
    # Prefer the quantized file a release ships (…-q4_k_m.gguf sorts after the f16 one).
    quantized = [p for p in found if any(q in p.name.lower() for q in ("q4", "q6", "q8"))]
    return next(iter(quantized or found), None)


def default_model_path() -> Path | None:
    """The shipped default model: `$GOLDIFF_DEFAULT_MODEL`, else `own_model_path()`."""
    env = os.environ.get(DEFAULT_MODEL_ENV)
    if env:
        path = Path(env).expanduser()
        return path if path.is_file() else None  # resolve() says the variable is wrong
    return own_model_path()


@dataclass
class Entry:
    name: str
    path: str
    kind: str = "model"  # model | adapter
    base: str | None = None  # adapters: the base model's name or path
    lineage: dict[str, Any] = field(default_factory=dict)  # base, export id, recipe, metrics
    registered_at: float = 0.0
    builtin: bool = False  # the shipped default, not in registry.json

    def exists(self) -> bool:
        return Path(self.path).is_file()


@dataclass(frozen=True)
class Resolved:
    """What a server loads: a model file, maybe an adapter on top, and a name to record."""

    name: str
    model_path: Path
    adapter_path: Path | None = None
    gate: Path | None = None  # the model's current show/hide gate (goldiff.gate), if trained


class Registry:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "models" / "registry.json"

    # ------------------------------------------------------------------ storage

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            data = {"version": 1}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the model registry {self.path} is unreadable ({exc}); fix or delete it"
            ) from exc
        return {"default": None, "models": {}, "gates": {}, **data}

    def _save(self, data: dict[str, Any]) -> None:
        models_dir(self.home)
        # Whole, so a server reading the file never sees half of it.
        write_whole(self.path, ".registry.", json.dumps(data, indent=2, sort_keys=True).encode())

    def signature(self) -> tuple[int, int, int] | None:
        """What changes whenever registry.json does (inode, mtime, size); None: no file.

        Every write replaces the file (a new inode), so a change by another process, such as
        `goldiff models use`, is seen even within the clock's resolution.
        """
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # ------------------------------------------------------------------ API

    def register(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        kind: str = "model",
        base: str | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> Entry:
        """Add or replace `name`; an adapter needs the `base` it was trained on."""
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if not name or "/" in name or name.startswith("test:"):
            raise ConfigError(f"{name!r} is not a usable model name (no '/', not empty)")
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise ConfigError(f"cannot register {name}: {file} does not exist")
        if kind == "adapter" and not base:
            raise ConfigError(f"the adapter {name} needs the base model it applies to (base=NAME or path)")
        entry = Entry(name, str(file), kind, base, dict(lineage or {}), time.time())
        data = self._load()
        record = asdict(entry)
        record.pop("builtin")
        data["models"][name] = record
        self._save(data)
        return entry

    def list(self) -> list[Entry]:
        data = self._load()
        entries = [Entry(**rec) for rec in data["models"].values()]
        shipped = default_model_path()
        if shipped is not None and SHIPPED_NAME not in data["models"]:
            entries.insert(0, Entry(SHIPPED_NAME, str(shipped), lineage={"shipped": True}, builtin=True))
        return entries

    def get(self, name: str) -> Entry | None:
        return next((e for e in self.list() if e.name == name), None)

    def default(self) -> str | None:
        """The default's name: the one chosen with `use`, else the shipped model's."""
        chosen = self._load().get("default")
        if chosen:
            return str(chosen)
        return SHIPPED_NAME if default_model_path() is not None else None

    def use(self, name_or_path: str) -> Entry:
        """Make a registered name (or a GGUF path, registered under its file name) the default."""
        entry = self.get(name_or_path)
        if entry is None:
            file = Path(name_or_path).expanduser()
            if not file.is_file():
                raise ConfigError(
                    f"no model named {name_or_path!r} and no such file; `goldiff models list` shows the names"
                )
            entry = self.register(file.stem, file)
        self.resolve(entry.name)  # an adapter's base must resolve too
        data = self._load()
        data["default"] = entry.name
        self._save(data)
        return entry

    def annotate(self, name: str, **lineage: Any) -> None:
        """Add facts to a registered model's lineage (e.g. its promotion decision)."""
        data = self._load()
        if name not in data["models"]:
            raise ConfigError(f"no registered model named {name!r}")
        data["models"][name].setdefault("lineage", {}).update(lineage)
        self._save(data)

    # ------------------------------------------------------------------ gates

    def set_gate(self, model: str, path: str | os.PathLike[str], info: dict[str, Any] | None = None) -> int:
        """Record a newly trained show/hide gate for `model` and make it current; its version."""
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise ConfigError(f"cannot register the gate {file}: it does not exist")
        data = self._load()
        gates = data["gates"].setdefault(model, {"current": None, "versions": []})
        version = len(gates["versions"]) + 1
        gates["versions"].append(
            {"version": version, "path": str(file), "info": dict(info or {}), "registered_at": time.time()}
        )
        gates["current"] = version
        self._save(data)
        return version

    def gates(self, model: str) -> dict[str, Any]:
        """`{"current": N, "versions": [...]}` for `model` (no versions when none was trained)."""
        return dict(self._load()["gates"].get(model) or {"current": None, "versions": []})

    def gate_for(self, model: str) -> Path | None:
        """The current gate's file for `model`, if one was trained and still exists."""
        gates = self.gates(model)
        current = next((Path(v["path"]) for v in gates["versions"] if v["version"] == gates["current"]), None)
        return current if current is not None and current.is_file() else None

    def resolve(self, name_or_path: str | None = None) -> Resolved:
        """Files to load for a name, a path, or (None) the default, with the name's current
        gate; `ModelLoadError` if none."""
        if name_or_path is None:
            name_or_path = self.default()
            if name_or_path is None:
                env = os.environ.get(DEFAULT_MODEL_ENV)
                hint = f" (${DEFAULT_MODEL_ENV} names {env}, which does not exist)" if env else ""
                raise ModelLoadError(
                    f"no local model is configured and none is shipped{hint}: set goldiff.local.model "
                    "to a GGUF file, or register one with `goldiff models use PATH`"
                )
        adapter: Path | None = None
        adapter_name: str | None = None
        current = name_or_path
        while True:
            entry = self.get(current)
            if entry is None:
                file = Path(current).expanduser()
                if file.suffix == ".gguf" or file.exists() or os.sep in current:
                    name = f"{file.stem}+{adapter_name}" if adapter_name else file.stem
                    return Resolved(name, file, adapter, self.gate_for(name))
                raise ModelLoadError(
                    f"unknown local model {current!r}: `goldiff models list` shows the registered names"
                )
            if entry.kind == "model":
                name = entry.name if adapter_name is None else f"{entry.name}+{adapter_name}"
                return Resolved(name, Path(entry.path), adapter, self.gate_for(name))
            if adapter is not None or not entry.base:  # an adapter on an adapter (or on itself)
                raise ModelLoadError(f"the adapter {entry.name} must name a base model, not another adapter")
            adapter, adapter_name = Path(entry.path), entry.name
            current = entry.base
