"""The model registry and `goldiff models list|use`, on real files in a temporary home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from goldiff.cli import main
from goldiff.errors import ConfigError, ModelLoadError
from goldiff.sources.registry import DEFAULT_MODEL_ENV, SHIPPED_NAME, Registry, default_model_path


@pytest.fixture(autouse=True)
def no_shipped_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests must not depend on whether the repository's models/ holds a default yet.
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(tmp_path / "no-shipped-model.gguf"))


def test_register_list_use_resolve(tmp_path: Path, tiny_gguf: Path, tiny_lora: Path) -> None:
    registry = Registry(tmp_path / "home")
    registry.register("tiny", tiny_gguf, lineage={"recipe": "tiny", "export": "e1"})
    registry.register("tiny-lora", tiny_lora, kind="adapter", base="tiny", lineage={"base": "tiny"})
    names = [e.name for e in registry.list()]
    assert names[-2:] == ["tiny", "tiny-lora"]
    assert registry.get("tiny-lora").lineage == {"base": "tiny"}  # type: ignore[union-attr]
    assert registry.resolve("tiny").model_path == tiny_gguf.resolve()
    adapted = registry.resolve("tiny-lora")
    assert (adapted.name, adapted.model_path, adapted.adapter_path) == (
        "tiny+tiny-lora",
        tiny_gguf.resolve(),
        tiny_lora.resolve(),
    )
    registry.use("tiny-lora")
    assert registry.default() == "tiny-lora"
    assert registry.resolve(None).adapter_path == tiny_lora.resolve()
    # The file is plain JSON another process (the server) re-reads.
    data = json.loads((tmp_path / "home" / "models" / "registry.json").read_text())
    assert data["default"] == "tiny-lora" and set(data["models"]) == {"tiny", "tiny-lora"}


def test_a_path_resolves_without_registering(tmp_path: Path, tiny_gguf: Path) -> None:
    resolved = Registry(tmp_path).resolve(str(tiny_gguf))
    assert resolved.model_path == tiny_gguf and resolved.name == tiny_gguf.stem


def test_mistakes_say_what_to_do(tmp_path: Path, tiny_gguf: Path) -> None:
    registry = Registry(tmp_path)
    with pytest.raises(ModelLoadError, match="no local model is configured"):
        registry.resolve(None)
    with pytest.raises(ModelLoadError, match="goldiff models list"):
        registry.resolve("unknown-name")
    with pytest.raises(ConfigError, match="does not exist"):
        registry.register("x", tmp_path / "missing.gguf")
    with pytest.raises(ConfigError, match="base model"):
        registry.register("a", tiny_gguf, kind="adapter")
    with pytest.raises(ConfigError, match="models list"):
        registry.use("nothing-like-this")


def test_the_shipped_model_is_the_default(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(tiny_gguf))
    assert default_model_path() == tiny_gguf
    registry = Registry(tmp_path)
    assert registry.default() == SHIPPED_NAME
    assert registry.list()[0].builtin
    assert registry.resolve(None).model_path == tiny_gguf
    registry.register("mine", tiny_gguf)
    registry.use("mine")
    assert registry.default() == "mine"


def test_cli_models_use_and_list(tmp_path: Path, tiny_gguf: Path) -> None:
    runner = CliRunner()
    home = str(tmp_path / "home")
    used = runner.invoke(main, ["models", "use", "--home", home, str(tiny_gguf)])
    assert used.exit_code == 0, used.output
    assert "goldiff-tiny" in used.output
    listed = runner.invoke(main, ["models", "list", "--home", home])
    assert listed.exit_code == 0 and f"* goldiff-tiny  [model]  {tiny_gguf.resolve()}" in listed.output
    as_json = json.loads(runner.invoke(main, ["models", "list", "--home", home, "--json"]).output)
    assert as_json[0]["name"] == "goldiff-tiny" and as_json[0]["default"] and as_json[0]["exists"]
    bad = runner.invoke(main, ["models", "use", "--home", home, "no-such-model"])
    assert bad.exit_code == 1 and "goldiff models list" in bad.output


def test_completions_resolve_the_registry_once_until_it_changes(
    tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server parses registry.json again only when the file changed, and a change from
    another process (`goldiff models use`) applies to the next completion without a restart."""
    import shutil
    import threading

    import attrs
    from goldiff.server import GoldiffServer
    from goldiff.settings import LocalSettings, Settings
    from goldiff.sources.base import CompletionRequest

    reads = 0
    load = Registry._load

    def counting(self: Registry) -> dict[str, object]:
        nonlocal reads
        reads += 1
        return load(self)

    monkeypatch.setattr(Registry, "_load", counting)
    home = tmp_path / "home"
    Registry(home).register("first", tiny_gguf)
    Registry(home).use("first")
    other = Path(shutil.copy(tiny_gguf, tmp_path / "second.gguf"))
    Registry(home).register("second", other)
    server = GoldiffServer(home)
    server.settings = attrs.evolve(Settings(), mode="local", local=LocalSettings(threads=1))
    service = server.completion
    request = CompletionRequest(prefix="x = ", suffix="\n", max_tokens=2, max_seconds=120, path="/a.py")
    try:
        assert service._complete("local", request, threading.Event()).model == "first"
        once = reads
        for _ in range(30):
            assert service._complete("local", request, threading.Event()).model == "first"
        assert reads == once  # thirty completions, no new read
        Registry(home).use("second")  # as `goldiff models use second` in a terminal
        after_use = reads
        assert service._complete("local", request, threading.Event()).model == "second"
        settled = reads
        assert settled > after_use
        for _ in range(5):
            assert service._complete("local", request, threading.Event()).model == "second"
        assert reads == settled  # no read again without a change
    finally:
        for source in list(service._local.values()):
            source.close()
        server.close_store()
