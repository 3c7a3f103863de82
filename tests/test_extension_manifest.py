"""The extension's package.json and protocol.ts agree with the server.

package.json is the one source of truth for the `goldiff.*` settings a user sees; the
server parses the same settings (camelCase) from initializationOptions. A default or an
enum that drifts on one side would make the Settings editor lie about what the server does.
`extension/src/protocol.ts` names the server's commands and the notifications it takes:
each must be one `goldiff.protocol` declares and the server registers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from goldiff import protocol
from goldiff.lsp import build_server
from goldiff.protocol import MODES, PROVIDERS, unstructure
from goldiff.settings import Settings, read_settings

MANIFEST = Path(__file__).resolve().parents[1] / "extension" / "package.json"
PROTOCOL_TS = MANIFEST.parent / "src" / "protocol.ts"
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


def nested(key: str, value: Any) -> dict[str, Any]:
    head, _, rest = key.partition(".")
    return {head: nested(rest, value) if rest else value}


WRONG_TYPE = {"string": 5, "boolean": "yes", "number": "soon", "integer": 2.5, "array": "claude"}
RIGHT_TYPE = {"string": "x", "boolean": True, "number": 30, "integer": 3, "array": ["a"]}


def test_every_setting_is_checked_against_its_declared_schema() -> None:
    """A value package.json would not allow is refused by name and the default used;
    one it allows is taken. Types, enums, minimums and array items all count."""
    props = properties()
    defaults = flat(unstructure(Settings()))
    for key, default in defaults.items():
        if key in SECRET_KEYS:
            continue
        prop = props[f"goldiff.{key}"]
        wrong: list[Any] = [WRONG_TYPE[prop["type"]], ["a", "b"] if prop["type"] != "array" else "x"]
        if "enum" in prop:
            wrong.append("no-such-value")
        if "minimum" in prop:
            wrong.append(prop["minimum"] - 1)
        if prop.get("items", {}).get("type") == "string":
            wrong.append([5])
        for value in wrong:
            settings, problems = read_settings(nested(key, value))
            assert len(problems) == 1 and f"goldiff.{key} " in problems[0], (key, value, problems)
            assert flat(unstructure(settings))[key] == default, (key, value)
        right = prop["enum"][-1] if "enum" in prop else RIGHT_TYPE[prop["type"]]
        settings, problems = read_settings(nested(key, right))
        assert problems == [] and flat(unstructure(settings))[key] == right, (key, right, problems)


def test_one_wrong_setting_leaves_the_others_applied() -> None:
    settings, problems = read_settings(
        {"goldiff": {"mode": "shadow", "local": {"model": 5, "adapter": "a.gguf"}}}
    )
    assert (settings.mode, settings.local.model, settings.local.adapter) == ("shadow", None, "a.gguf")
    assert problems == [
        "setting goldiff.local.model = 5 is invalid (expected a string, got int); using the default (unset)"
    ]


def ts_names(constant: str) -> set[str]:
    """The string values of `export const NAME = { key: 'value', ... }` in protocol.ts."""
    source = PROTOCOL_TS.read_text(encoding="utf-8")
    body = re.search(rf"export const {constant} = \{{(.*?)\}} as const;", source, re.S)
    assert body is not None, f"{constant} is not in protocol.ts"
    return set(re.findall(r"^\s*\w+: '([^']+)',", body.group(1), re.M))


def ts_tuple(constant: str) -> list[str]:
    source = PROTOCOL_TS.read_text(encoding="utf-8")
    body = re.search(rf"export const {constant} = \[(.*?)\] as const;", source, re.S)
    assert body is not None, f"{constant} is not in protocol.ts"
    return re.findall(r"'([^']+)'", body.group(1))


def test_protocol_ts_names_what_the_server_declares_and_registers(tmp_path: Path) -> None:
    commands, notifications = ts_names("ServerCommands"), ts_names("Notifications")
    assert commands and commands <= set(protocol.COMMANDS)
    assert notifications == set(protocol.NOTIFICATIONS)
    assert ts_tuple("MODES") == list(MODES)
    assert ts_tuple("PROVIDERS") == list(PROVIDERS)
    server = build_server(tmp_path, clock="logical")  # the logical clock adds goldiff.advanceClock
    try:
        assert set(server.protocol.fm.commands) == set(protocol.COMMANDS)
        assert set(protocol.NOTIFICATIONS) <= set(server.protocol.fm.features)
    finally:
        server.close_store()
