"""Bad input a careless or hostile client sends, one probe at a time, over real stdio.

Each probe is a message that once killed the server, went unanswered, lost records or
deleted data: framing that lies, params that fail validation, integers beyond 64 bits,
wrong settings, destructive commands without a scope, lone surrogates.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from goldiff import audit
from goldiff.store import TraceStore, open_database

from tests.lsp_client import server_env, utf16_pos
from tests.pipe_client import PipeClient

TEST_MODEL = "test:" + json.dumps(
    {"rules": [], "default": "pass", "edits": [{"instruction": "tidy", "text": "x = 1\n"}]}
)
DOC = "file:///probe/doc.py"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[PipeClient]:
    c = PipeClient([sys.executable, "-m", "tests.testing_server", "serve"], server_env(tmp_path / "home"))
    c.initialize({"capture": {"enabled": True}, "local": {"model": TEST_MODEL}})
    c.home = tmp_path / "home"  # type: ignore[attr-defined]
    yield c
    c.close()


def status(c: PipeClient) -> dict[str, Any]:
    result: dict[str, Any] = c.request("workspace/executeCommand", {"command": "goldiff.status"}, timeout=60)
    return result


def error_of(c: PipeClient, method: str, params: Any = None, *, omit_params: bool = False) -> dict[str, Any]:
    c._next_id += 1
    rid = c._next_id
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if not omit_params:
        message["params"] = params
    c.write(c.encode(message))
    answer = c.answer(rid, timeout=60)
    assert "error" in answer, answer
    error: dict[str, Any] = answer["error"]
    return error


def open_doc(c: PipeClient, uri: str, text: str) -> None:
    c.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )


# ---------------------------------------------------------------------------- framing


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Length: 1000000000000000\r\n\r\n",
        b"Content-Length: 99999999999999999999\r\n\r\n",
        b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: -1\r\n\r\n",
        b"Content-Length: 0\r\n\r\n",
        b"Content-Type: application/json\r\n\r\n",
    ],
)
def test_a_lying_header_is_skipped_and_the_server_goes_on(client: PipeClient, header: bytes) -> None:
    client.write(header + b'{"jsonrpc":"2.0","method":"x"}')
    assert status(client)["capture"] is True
    assert client.proc.poll() is None


def test_header_names_are_case_insensitive(client: PipeClient) -> None:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": "lower",
            "method": "workspace/executeCommand",
            "params": {"command": "goldiff.status"},
        }
    ).encode()
    client.write(b"content-length: %d\r\ncontent-type: application/vscode-jsonrpc\r\n\r\n" % len(body) + body)
    assert client.answer("lower", timeout=60)["result"]["capture"] is True


def test_a_message_over_64_mb_is_refused_without_reading_it_into_memory(client: PipeClient) -> None:
    size = 65 * 1024 * 1024
    client.write(
        b"Content-Length: %d\r\n\r\n" % size
        + b'{"jsonrpc":"2.0","method":"x","params":"'
        + b"a" * (size - 40)
    )
    client.write(b'"}')
    assert status(client)["capture"] is True


def test_a_body_that_is_not_json_rpc_gets_no_pop_up(client: PipeClient) -> None:
    for body in (b"{", b"[]", b"42", b'{"jsonrpc":"1.0","method":"x"}', b"\xff\xfe"):
        client.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    status(client)
    assert client.shown() == []


# ---------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("position", "context", "field"),
    [
        ({"line": -1, "character": 0}, {"triggerKind": 1}, "line"),
        ({"line": 2**31, "character": 0}, {"triggerKind": 1}, "line"),
        ({"line": 0, "character": 0}, None, "context"),
    ],
)
def test_invalid_completion_params_are_answered_with_32602_naming_the_field(
    client: PipeClient, position: dict[str, int], context: Any, field: str
) -> None:
    open_doc(client, DOC, "x = 1\n")
    params: dict[str, Any] = {"textDocument": {"uri": DOC}, "position": position}
    if context is not None:
        params["context"] = context
    error = error_of(client, "textDocument/inlineCompletion", params)
    assert error["code"] == -32602
    assert field in error["message"]


def test_unknown_method_without_params_is_answered_with_32601(client: PipeClient) -> None:
    error = error_of(client, "goldiff/noSuchRequest", omit_params=True)
    assert error["code"] == -32601


def test_execute_command_without_command_is_answered_with_32602(client: PipeClient) -> None:
    error = error_of(client, "workspace/executeCommand", {"arguments": []})
    assert error["code"] == -32602
    assert "command" in error["message"]


def test_an_internal_error_is_answered_with_32603_and_the_server_goes_on(client: PipeClient) -> None:
    # goldiff.test.suggest on a document that is not open fails inside the handler.
    error = error_of(
        client,
        "workspace/executeCommand",
        {
            "command": "goldiff.test.suggest",
            "arguments": [{"uri": "file:///nope.py", "line": 0, "character": 0, "text": "x"}],
        },
    )
    assert error["code"] == -32603
    assert status(client)["capture"] is True


def test_invalid_command_arguments_are_answered_with_32602(client: PipeClient) -> None:
    error = error_of(
        client, "workspace/executeCommand", {"command": "goldiff.setMode", "arguments": [{"mode": 5}]}
    )
    assert error["code"] == -32602
    assert "mode" in error["message"]


# ---------------------------------------------------------------------------- no record lost


def test_integers_beyond_64_bits_lose_no_other_record(client: PipeClient) -> None:
    text = "# typed\n"
    open_doc(client, DOC, text)
    for i in range(41):
        if i % 10 == 5:
            client.notify("goldiff/terminalCommand", {"commandLine": "make", "exitCode": 2**63})
            client.notify("goldiff/suggestionPartiallyAccepted", {"id": "s1", "acceptedLength": 2**63})
            client.notify("goldiff/terminalCommand", {"commandLine": "make", "exitCode": -(2**63) - 1})
        pos = utf16_pos(text, len(text))
        rng = {"line": pos.line, "character": pos.character}
        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": DOC, "version": i + 2},
                "contentChanges": [{"range": {"start": rng, "end": rng}, "text": "x"}],
            },
        )
        text += "x"
    client.request("workspace/executeCommand", {"command": "goldiff.stats"})
    db, _ = open_database(client.home / "traces.db")  # type: ignore[attr-defined]
    rebuilt = audit.rebuild(db, DOC)
    assert rebuilt.text == text and rebuilt.verified and rebuilt.version == 42


def test_the_writer_quarantines_a_record_it_cannot_write_and_keeps_the_batch(tmp_path: Path) -> None:
    warnings: list[str] = []
    store = TraceStore(tmp_path / "traces.db", on_error=lambda err: warnings.append(str(err)))
    store.record_terminal_command({"id": 1, "command_line": "ls", "exit_code": 0, "started_at": 1.0})
    store.record_terminal_command({"id": 2, "command_line": "ls", "exit_code": 2**63, "started_at": 2.0})
    store.record_terminal_command({"id": 3, "command_line": "ls", "exit_code": 1, "started_at": 3.0})
    store.record_event("probe", session_id=None, detail={"n": 1})
    assert store.flush()
    store.close()
    db = sqlite3.connect(tmp_path / "traces.db")
    ids = [r[0] for r in db.execute("SELECT id FROM terminal_commands ORDER BY id")]
    assert ids == [1, 3]
    assert db.execute("SELECT COUNT(*) FROM events WHERE kind = 'probe'").fetchone()[0] == 1
    gaps = [json.loads(r[0]) for r in db.execute("SELECT detail FROM events WHERE kind = 'gap'")]
    assert gaps == [{"table": "terminal_commands", "reason": "an integer beyond 64 bits"}]
    assert len(warnings) == 1 and "terminal_commands" in warnings[0]


# ---------------------------------------------------------------------------- settings


def test_a_wrong_setting_is_reported_once_by_name_and_its_default_used(client: PipeClient) -> None:
    for _ in range(3):
        client.notify(
            "workspace/didChangeConfiguration", {"settings": {"local": {"model": 5}, "settleSeconds": 20}}
        )
    result = status(client)
    # The answering model is the default one, not a model named "5".
    assert result["model"] and result["model"] != "5"
    shown = [m["params"]["message"] for m in client.shown()]
    assert len(shown) == 1, shown
    assert "goldiff.local.model" in shown[0] and "default" in shown[0]


# ---------------------------------------------------------------------------- forget


@pytest.mark.parametrize(
    "arguments",
    [
        None,
        [],
        [None],
        [{"workspace": None}],
        [{"workspce": "/probe"}],
        [{"all": False}],
        [{"workspace": ""}],
        [1],
    ],
)
def test_forget_without_an_explicit_scope_deletes_nothing(client: PipeClient, arguments: Any) -> None:
    open_doc(client, DOC, "keep me\n")
    client.request("workspace/executeCommand", {"command": "goldiff.stats"})
    params: dict[str, Any] = {"command": "goldiff.forget"}
    if arguments is not None:
        params["arguments"] = arguments
    error = error_of(client, "workspace/executeCommand", params)
    assert error["code"] == -32602
    assert '{"all": true}' in error["message"]
    stats = client.request("workspace/executeCommand", {"command": "goldiff.stats"})
    assert stats["documents"] == 1


def test_forget_all_is_obeyed(client: PipeClient) -> None:
    open_doc(client, DOC, "delete me\n")
    client.request("workspace/executeCommand", {"command": "goldiff.stats"})
    client.request("workspace/executeCommand", {"command": "goldiff.forget", "arguments": [{"all": True}]})
    assert client.request("workspace/executeCommand", {"command": "goldiff.stats"})["documents"] == 0


# ---------------------------------------------------------------------------- surrogates and pop-ups


def test_propose_edit_on_a_document_with_a_lone_surrogate(client: PipeClient) -> None:
    open_doc(client, DOC, "def f():\n    return '\ud800'\n")
    rid = client.send(
        "workspace/executeCommand",
        {
            "command": "goldiff.proposeEdit",
            "arguments": [
                {
                    "uri": DOC,
                    "instruction": "tidy",
                    "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}},
                }
            ],
        },
    )
    answer = client.answer(rid, timeout=120)
    # The proposal reached the client as workspace/applyEdit (which this client declines).
    assert [m for m in client.notifications if m["method"] == "workspace/applyEdit"], answer
    assert status(client)["capture"] is True


def test_a_flood_of_failing_notifications_shows_a_handful_of_pop_ups(client: PipeClient) -> None:
    for i in range(300):
        client.notify("workspace/didChangeConfiguration", {"settings": {"local": {"model": i}}})
        client.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": DOC, "version": i}, "contentChanges": [{"x": i}]},
        )
    status(client)
    time.sleep(0.2)
    assert len(client.shown()) <= 5


def test_edit_prompts_and_frontier_bodies_survive_a_lone_surrogate() -> None:
    import httpx
    from goldiff.agent.rewrite import ChatEditSource, EditRequest
    from goldiff.sources.frontier import AnthropicSource

    request = EditRequest(path="a.py", region="x = '\ud800'\n", instruction="tidy", context_after="\udfff")
    request.prompt().encode("utf-8")  # what llama.cpp's create_completion does with it
    sent: list[bytes] = []

    def handler(r: httpx.Request) -> httpx.Response:
        sent.append(r.content)
        return httpx.Response(200, json={"content": [{"type": "text", "text": "x = 1\n"}], "usage": {}})

    source = AnthropicSource(model="claude", api_key="k", transport=httpx.MockTransport(handler))
    assert ChatEditSource(source).rewrite(request, threading.Event()).text.startswith("x = 1")
    assert "x = '" in json.loads(sent[0])["messages"][0]["content"]


def test_a_keystroke_on_a_long_line_without_spaces_scans_a_bounded_window() -> None:
    from goldiff.store import SCAN_MARGIN, SCAN_TOKEN_MAX, _scan_window

    line = "a" * 1_000_000
    for at in (0, 500_000, len(line) - 1):
        start, end = _scan_window(line, at, at + 1)
        assert start <= at and end >= at + 1
        assert end - start <= 2 * (SCAN_MARGIN + SCAN_TOKEN_MAX) + 1


def test_the_framed_reader_resynchronises_on_the_next_header() -> None:
    import io

    from goldiff.rpc import FramedReader

    body = b'{"jsonrpc":"2.0","method":"x"}'
    sound = b"Content-Length: %d\r\n\r\n" % len(body) + body
    streams = {
        b"Content-Length: 1000000000000000\r\n\r\n" + body + sound: 1,
        b"content-length: %d\r\ncontent-type: x\r\n\r\n" % len(body) + body: 0,
        b"Content-Length: abc\r\n\r\n" + body + sound: 1,
        b"content-length: 5" * 20_000 + b"\r\n" + sound: 0,
        b"x" * 3_000_000 + sound: 0,
        b"Content-Length: 0\r\n\r\n" + sound: 1,
    }
    for stream, skipped in streams.items():
        reader = FramedReader(io.BytesIO(stream))
        assert reader.readline() == b"Content-Length: %d\r\n" % len(body)
        assert reader.readline() == b"\r\n"
        assert reader.read(len(body)) == body
        assert reader.skipped == skipped
        assert reader.readline() == b""  # end of input


def test_keystrokes_leave_no_handler_behind(client: PipeClient, tmp_path: Path) -> None:
    """Each didChange used to stay in pygls' table of running handlers for good: memory grew
    with every keystroke, and so did the work of every later command's cancel hook."""
    uri = (tmp_path / "typed.py").as_uri()
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 0, "text": ""}},
    )
    for i in range(300):
        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": i + 1},
                "contentChanges": [
                    {
                        "range": {"start": {"line": 0, "character": i}, "end": {"line": 0, "character": i}},
                        "text": "x",
                    }
                ],
            },
        )
    stats = client.request("workspace/executeCommand", {"command": "goldiff.serverStats"}, timeout=60)
    assert stats["didChangeCount"] == 300
    assert stats["pendingHandlers"] <= 2, stats  # the serverStats request itself at most


def test_a_message_from_the_store_writer_thread_is_sent_from_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the loop's thread writes to the client: a writer thread's message is handed to it."""
    import asyncio

    from goldiff.server import GoldiffServer

    server = GoldiffServer(tmp_path / "home")
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        server, "window_show_message", lambda p: sent.append((threading.current_thread().name, p.message))
    )

    async def serve() -> None:
        server.event_loop = asyncio.get_running_loop()  # as initialize sets it
        writer = threading.Thread(target=server.tell_user, args=("the disk is full",), name="writer")
        writer.start()
        await asyncio.to_thread(writer.join)
        await asyncio.sleep(0.05)  # the handed-over call runs on the loop
        server.tell_user("shown from the loop")

    try:
        asyncio.run(serve())
    finally:
        server.close_store()
    loop_thread = threading.main_thread().name
    assert sent == [(loop_thread, "the disk is full"), (loop_thread, "shown from the loop")]


def test_a_message_that_cannot_be_sent_does_not_fail_the_handler_that_sends_it(tmp_path: Path) -> None:
    """On the event loop, as elsewhere, a showMessage that fails is dropped, not raised."""
    import asyncio

    from goldiff.server import GoldiffServer

    server = GoldiffServer(tmp_path / "home")

    def broken(_params: object) -> None:
        raise BrokenPipeError("the client is gone")

    server.window_show_message = broken  # type: ignore[method-assign]

    async def serve() -> None:
        server.event_loop = asyncio.get_running_loop()  # as initialize sets it
        server.tell_user("the disk is full")

    try:
        asyncio.run(serve())
    finally:
        server.close_store()
    assert server.shown_messages == 1
