"""The extension's package.json and the server's settings agree.

package.json is the one source of truth for the `goldiff.*` settings a user sees; the
server parses the same settings (camelCase) from initializationOptions. A default or an
enum that drifts on one side would make the Settings editor lie about what the server does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from goldiff.protocol import unstructure
from goldiff.settings import MODES, PROVIDERS, Settings

MANIFEST = Path(__file__).resolve().parents[1] / "extension" / "package.json"
# Held in VS Code's secret storage, never a setting.
SECRET_KEYS = {"frontier.apiKey"}


def properties() -> dict[str, Any]:
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    props: dict[str, Any] = data["contributes"]["configuration"]["properties"]
    return props


def flat(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in value.items():
        name = f"{prefix}{key}"
        if isinstance(v, dict):
            out.update(flat(v, f"{name}."))
        else:
            out[name] = v
    return out


def test_every_server_setting_is_declared_with_the_servers_default() -> None:
    server = flat(unstructure(Settings()))
    props = properties()
    declared = {}
    for key, default in server.items():
        if key in SECRET_KEYS:
            continue
        assert f"goldiff.{key}" in props, f"goldiff.{key} is missing from extension/package.json"
        # An empty string in the Settings editor is "unset", which the server reads as None.
        declared[key] = props[f"goldiff.{key}"]["default"]
        if default is None:
            assert declared[key] == "", f"goldiff.{key}: unset should be the empty string"
            declared[key] = None
    assert declared == {k: v for k, v in server.items() if k not in SECRET_KEYS}


def test_enums_match_what_the_server_accepts() -> None:
    props = properties()
    assert props["goldiff.mode"]["enum"] == list(MODES)
    assert props["goldiff.frontier.provider"]["enum"] == list(PROVIDERS)


def test_no_secret_is_a_setting() -> None:
    assert not [k for k in properties() if "key" in k.lower() or "token" in k.lower()]
