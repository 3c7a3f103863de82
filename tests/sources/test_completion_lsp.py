"""Inline completion end to end: a real LSP client, a real server, real sources, real SQLite."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from goldiff.store import open_database
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp_client import Editor, goldiff_client, server_env

SOURCE = "def add(a, b):\n    "


def patient(home: Path) -> dict[str, str]:
    """A generous time budget: the machine running the tests may be busy; timing is not under test."""
    return server_env(home, GOLDIFF_COMPLETION_TIMEOUT="120")


def rules(text: str, model: str) -> str:
    return "test:" + json.dumps({"rules": [{"after": "    ", "text": text}], "model": model})


async def complete(client: LanguageClient, uri: str, text: str) -> types.InlineCompletionList | None:
    line = text.count("\n")
    character = len(text) - (text.rfind("\n") + 1)
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
    )
    assert result is None or isinstance(result, types.InlineCompletionList)
    return result


async def complete_one_line(client: LanguageClient, uri: str, text: str) -> types.InlineCompletionItem:
    """Open `text`, ask for an inline completion at its end, and return the single one-line item
    once the server has recorded it as a suggestion."""
    Editor(client).open(uri, text)
    result = await complete(client, uri, text)
    assert result is not None and len(result.items) == 1
    item = result.items[0]
    assert item.insert_text and "\n" not in item.insert_text
    await wait_for_suggestions(client, 1)
    return item


async def command(client: LanguageClient, name: str, *args: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(args))
    )


def suggestions(home: Path) -> list[dict[str, Any]]:
    db, _ = open_database(home / "traces.db")
    try:
        return list(db.query("SELECT * FROM suggestions ORDER BY ts, rowid"))
    finally:
        db.conn.close()


async def wait_for_suggestions(client: LanguageClient, n: int) -> None:
    deadline = time.monotonic() + 60
    while (await command(client, "goldiff.stats"))["suggestions"] < n:
        assert time.monotonic() < deadline, f"fewer than {n} suggestions recorded"
        await asyncio.sleep(0.05)


async def accept(client: LanguageClient, item: types.InlineCompletionItem) -> bool:
    """Run the item's command as an editor does on accept; False if the server lacks it."""
    assert item.command is not None
    try:
        await command(client, item.command.command, *(item.command.arguments or []))
    except Exception as exc:
        # The outcome lifecycle (the goldiff.accepted handler) is not in this build.
        assert "goldiff.accepted" in str(exc) or "not found" in str(exc).lower(), exc
        return False
    return True


async def test_local_mode_with_a_real_gguf(tmp_path: Path, tiny_gguf: Path) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    text = "import os\n\n\ndef main():\n    value = "
    async with goldiff_client(
        home, env=patient(home), options={"mode": "local", "local": {"model": str(tiny_gguf)}}
    ) as client:
        Editor(client).open(uri, text)
        result = await complete(client, uri, text)
        assert result is not None and len(result.items) == 1
        item = result.items[0]
        sid = item.command.arguments[0]  # type: ignore[union-attr,index]
        end = types.Position(line=4, character=12)
        assert item == types.InlineCompletionItem(
            insert_text=item.insert_text,
            range=types.Range(start=end, end=end),
            command=types.Command(title="Goldiff: accepted", command="goldiff.accepted", arguments=(sid,)),
        )
        assert item.insert_text and "\n" not in item.insert_text
        accepted = await accept(client, item)
        await wait_for_suggestions(client, 1)
    [row] = suggestions(home)
    assert row["id"] == sid and row["text"] == item.insert_text
    assert (row["source"], row["model"], row["mode"], row["shadow_of"]) == (
        "local",
        "goldiff-tiny",
        "local",
        None,
    )
    assert (row["line"], row["character"], row["offset"], row["version"]) == (4, 12, len(text), 1)
    assert row["prefix"] == text and row["suffix"] == ""
    assert row["prompt_tokens"] > len(text) // 4 and row["completion_tokens"] >= 1 and row["latency_ms"] > 0
    context = json.loads(row["context"])
    assert context["language"] == "python" and context["stopReason"] in ("line", "max_tokens", "max_time")
    if accepted:
        assert row["outcome"] == "accepted"


async def test_frontier_mode_against_llama_cpp_server(tmp_path: Path, openai_server: str) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    options = {
        "mode": "frontier",
        "frontier": {"baseUrl": openai_server, "model": "tiny", "apiKey": "sk-secret"},
    }
    async with goldiff_client(home, env=patient(home), options=options) as client:
        Editor(client).open(uri, SOURCE)
        result = await complete(client, uri, SOURCE)
        await wait_for_suggestions(client, 1)
    [row] = suggestions(home)
    assert (row["source"], row["model"], row["mode"]) == ("frontier", "tiny", "frontier")
    assert row["prompt_tokens"] > 0
    if result is not None and result.items:
        assert row["text"] == result.items[0].insert_text
    db, _ = open_database(home / "traces.db")
    try:
        dumped = "\n".join(str(r) for t in db.table_names() for r in db[t].rows)
    finally:
        db.conn.close()
    assert "sk-secret" not in dumped  # the key is in no table


async def test_shadow_mode_records_the_local_suggestion_beside_the_shown_one(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    options = {
        "mode": "shadow",
        "frontier": {"model": rules("return a + b", "frontier-rules")},
        "local": {"model": str(tiny_gguf)},
    }
    async with goldiff_client(home, env=patient(home), options=options) as client:
        Editor(client).open(uri, SOURCE)
        result = await complete(client, uri, SOURCE)
        assert result is not None and [i.insert_text for i in result.items] == ["return a + b"]
        await wait_for_suggestions(client, 2)
    shown, shadow = suggestions(home)
    assert (shown["source"], shown["model"], shown["mode"], shown["text"]) == (
        "frontier",
        "frontier-rules",
        "shadow",
        "return a + b",
    )
    assert (shadow["source"], shadow["model"], shadow["shadow_of"], shadow["shown"]) == (
        "local",
        "goldiff-tiny",
        shown["id"],
        0,
    )
    assert shadow["prefix"] == shown["prefix"] == SOURCE  # the same context, for comparison


async def test_shadow_answers_reach_the_stats_and_the_status_names_the_shown_model(tmp_path: Path) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    options = {
        "mode": "shadow",
        "capture": {"enabled": True},
        "frontier": {"model": rules("return a + b", "frontier-rules")},
        "local": {"model": rules("return a + b", "local-rules")},
    }
    async with goldiff_client(home, env=patient(home), options=options) as client:
        Editor(client).open(uri, SOURCE)
        await complete(client, uri, SOURCE)
        await wait_for_suggestions(client, 2)
        stats = await command(client, "goldiff.stats")
        status = await command(client, "goldiff.status")
    # The hidden local answer is counted, and compared with the shown frontier one.
    assert stats["shadow"]["answers"] == 1 and stats["shadow"]["matched_shown"] == 1
    assert stats["shadow"]["empty"] == 0
    assert status["shadowToday"]["answers"] == 1
    # In shadow mode the frontier answers what the user sees; the status bar names it.
    assert status["answering"] == {"source": "frontier", "provider": "openai", "model": "frontier-rules"}
    assert status["model"] == "frontier-rules"
    # Acceptance is per source: the hidden local answer is not a shown local suggestion.
    assert set(status["acceptanceBySource"]) == {"frontier"}
    assert status["acceptanceBySource"]["frontier"]["shown"] == 1


async def test_the_status_names_the_local_model_in_local_mode(tmp_path: Path) -> None:
    home = tmp_path / "home"
    options = {"mode": "local", "local": {"model": rules("x", "local-rules")}}
    async with goldiff_client(home, env=patient(home), options=options) as client:
        status = await command(client, "goldiff.status")
        assert status["answering"] == {"source": "local", "model": "local-rules"}
        await command(client, "goldiff.setMode", {"mode": "frontier"})
        status = await command(client, "goldiff.status")
        registry = await command(client, "goldiff.models")
        assert isinstance(registry["models"], list) and "default" in registry
    # An empty frontier model is the provider's documented default.
    assert status["answering"] == {"source": "frontier", "provider": "openai", "model": "gpt-4.1-mini"}


async def test_typing_into_a_suggestion_reuses_it_and_set_mode_switches(tmp_path: Path) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    options = {
        "mode": "frontier",
        "frontier": {"model": rules("return a + b", "frontier-rules")},
        "local": {"model": rules("return b + a", "local-rules")},
    }
    async with goldiff_client(home, env=patient(home), options=options) as client:
        editor = Editor(client)
        editor.open(uri, SOURCE)
        first = await complete(client, uri, SOURCE)
        assert first is not None
        sid = first.items[0].command.arguments[0]  # type: ignore[union-attr,index]
        editor.type(uri, len(SOURCE), "ret")
        again = await complete(client, uri, editor.texts[uri])
        assert again is not None and again.items[0].insert_text == "urn a + b"
        assert list(again.items[0].command.arguments) == [sid]  # type: ignore[union-attr]
        editor.type(uri, len(SOURCE) + 3, "x")  # typed away from it: a new request
        typed_away = await complete(client, uri, editor.texts[uri])
        assert typed_away is None or not typed_away.items

        assert await command(client, "goldiff.setMode", {"mode": "local"}) == {"mode": "local"}
        editor.replace(uri, len(SOURCE), len(editor.texts[uri]), "")
        local = await complete(client, uri, editor.texts[uri])
        assert local is not None and local.items[0].insert_text == "return b + a"
        await wait_for_suggestions(client, 3)
    rows = suggestions(home)
    assert [(r["source"], r["text"]) for r in rows] == [
        ("frontier", "return a + b"),
        ("frontier", ""),  # nothing matched "retx": recorded as an empty suggestion
        ("local", "return b + a"),
    ]
    assert rows[1]["outcome"] == "empty"


async def test_missing_model_is_told_once_and_capture_goes_on(tmp_path: Path) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    missing = tmp_path / "models" / "gone.gguf"
    async with goldiff_client(
        home, env=patient(home), options={"mode": "local", "local": {"model": str(missing)}}
    ) as client:
        editor = Editor(client)
        editor.open(uri, SOURCE)
        assert await complete(client, uri, SOURCE) is None
        editor.type(uri, len(SOURCE), "return a + b\n")
        assert await complete(client, uri, editor.texts[uri]) is None
        stats = await command(client, "goldiff.stats")
        messages = [m.message for m in client.messages]
    told = [m for m in messages if str(missing) in m]
    assert len(told) == 1, messages
    assert "does not exist" in told[0] and "keeps recording" in told[0]
    assert stats["edits"] > 1 and stats["suggestions"] == 0


async def test_a_cancelled_request_records_nothing(tmp_path: Path, tiny_gguf: Path) -> None:
    home, uri = tmp_path / "home", (tmp_path / "m.py").as_uri()
    text = "x = 1\n" * 2000
    async with goldiff_client(
        home, env=patient(home), options={"mode": "local", "local": {"model": str(tiny_gguf)}}
    ) as client:
        Editor(client).open(uri, text)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=2000, character=0),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        )
        future = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="slow-1")
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="slow-1"))
        try:
            await asyncio.wrap_future(future)
            cancelled = False
        except Exception as exc:  # the server answers RequestCancelled
            cancelled = "cancel" in str(exc).lower()
        assert cancelled
        # The server is still serving: the next request is answered.
        assert await complete(client, uri, text) is not None
        await wait_for_suggestions(client, 1)
        stats = await command(client, "goldiff.stats")
    assert stats["suggestions"] == 1
