"""The JSON-RPC boundary: framing, malformed messages, and what the user gets to see.

A server that lives for days next to an editor meets buggy clients and odd input. This
module keeps the damage local. `FramedReader` sits between stdin and pygls' message loop
and hands pygls only well-formed frames: header names are matched case-insensitively, a
message over `MAX_MESSAGE_BYTES` or with a missing, non-numeric or absurd `Content-Length`
is skipped with a logged reason (the reader finds the next message's header and carries
on), and nothing is ever allocated from a length the client claims. `invalid_params`
turns a validation failure into a sentence that names the field, for the `-32602`
answer every malformed request gets. `UserMessages` decides which messages reach the
user's screen: each distinct one once in a while, and only a few a minute, whatever
the client sends; the details always go to the log. `GoldiffProtocol` is pygls' protocol
with every request answered (see its docstring), and `bad_arguments` the one rule that
turns an error into the client's `-32602` or the server's `-32603`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Generator
from typing import Any, BinaryIO

import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
)
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage
from pygls.protocol.language_server import LanguageServerProtocol, lsp_method

from goldiff.capture.documents import OutOfSync
from goldiff.errors import ConfigError, PayloadError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # larger than any document Goldiff records (1 MB cap)
MAX_HEADER_BYTES = 8192  # of a header line kept while looking for the next header
_CHUNK = 1 << 16
_HEADER_TAIL = 256  # bytes at the end of a line searched for a Content-Length header

# A Content-Length header, possibly at the end of a line of skipped bytes: a body sent
# without its header (or skipped because its header was refused) usually has no newline
# of its own, so the next message's header follows it on the same line.
_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?\n\Z", re.IGNORECASE)
_HEADER = re.compile(rb"[!-9;-~]+[ \t]*:[^\r\n]*\r?\n\Z")  # any other header, e.g. Content-Type


class FramedReader:
    """A file-like stdin for pygls (`readline` and `read`) that only yields sound frames.

    pygls' loop reads header lines until a blank one, then `read(length)`. This reader
    parses the real stream itself and replays each accepted message to pygls as exactly
    `Content-Length: N\\r\\n`, `\\r\\n`, body; frames it refuses never reach pygls.
    """

    def __init__(self, raw: BinaryIO, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._raw = raw
        self._max = max_bytes
        self._lines: deque[bytes] = deque()
        self._body = b""
        self.skipped = 0  # frames refused so far (for tests and the log)

    def readline(self) -> bytes:
        if not self._lines:
            body = self._next_body()
            if body is None:
                return b""  # end of input: pygls stops its loop
            self._body = body
            self._lines.extend((b"Content-Length: %d\r\n" % len(body), b"\r\n"))
        return self._lines.popleft()

    def read(self, n: int = -1) -> bytes:
        body, self._body = self._body, b""
        return body

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        log.warning("skipped a message from the client: %s", reason)

    def _next_body(self) -> bytes | None:
        length: int | None = None
        refused: str | None = None
        seen_header = False
        while True:
            line = self._read_line()
            if line is None:
                return None
            if line in (b"\r\n", b"\n"):
                if not seen_header:
                    continue  # blank lines between messages, or in skipped bytes
                if refused is None and length:
                    return self._read_exactly(length)
                # The body (if any) follows without a usable length: skip forward to the
                # next header rather than trust any number.
                self._skip(refused or ("no Content-Length header" if length is None else "empty body"))
                length, refused, seen_header = None, None, False
                continue
            # Only a line's tail can hold the header (it ends the line); searching just the
            # tail keeps a hostile line of repeated "content-length:" from costing more.
            if (match := _CONTENT_LENGTH.search(line[-_HEADER_TAIL:])) is not None:
                seen_header = True
                value = match.group(1)
                if not value.isdigit():
                    length, refused = None, f"Content-Length {value[:40]!r} is not a byte count"
                elif len(value) > 12 or int(value) > self._max:
                    # Checked on the digits first: a 5,000-digit number is refused unparsed.
                    length = None
                    refused = f"Content-Length {value[:24].decode()} is over the {self._max} byte limit"
                else:
                    length, refused = int(value), None
            elif seen_header and _HEADER.match(line) is not None:
                continue  # Content-Type and any other header: nothing to check
            elif seen_header:
                # Neither header nor blank line: this frame is broken; look for the next.
                self._skip("malformed header")
                length, refused, seen_header = None, None, False

    def _read_line(self) -> bytes | None:
        """One line, of which at most the last `MAX_HEADER_BYTES` are kept; None at EOF."""
        line = self._raw.readline(_CHUNK)
        if not line:
            return None
        while not line.endswith(b"\n"):
            more = self._raw.readline(_CHUNK)
            if not more:
                return None
            line = line[-MAX_HEADER_BYTES:] + more
        return line

    def _read_exactly(self, n: int) -> bytes | None:
        parts: list[bytes] = []
        left = n
        while left > 0:
            part = self._raw.read(min(left, 1 << 20))
            if not part:
                return None
            parts.append(part)
            left -= len(part)
        return b"".join(parts)


def invalid_params(method: str, exc: BaseException) -> str:
    """A sentence naming each field that failed validation, for a `-32602` answer."""
    if isinstance(exc, cattrs.BaseValidationError):
        # Paths start at the message: `$.params.position.line` names the field the client sent.
        details = cattrs.transform_error(exc)
        problems = "; ".join(d.replace("@ $.", "at ").replace(" @ $", "") for d in details[:5])
    else:
        problems = str(exc) or type(exc).__name__
    return f"invalid params for {method}: {problems}"


class UserMessages:
    """Rate limit and deduplicate what the server shows the user (`window/showMessage`).

    A distinct message is shown at most once per `REPEAT_AFTER` seconds, and no more
    than `BURST` messages in a row, refilled at one per `REFILL_SECONDS`: a client that
    sends thousands of bad messages gets a handful of notices, not thousands of pop-ups.
    Suppressed messages are still logged, so nothing is lost for a bug report.
    """

    BURST = 5
    REFILL_SECONDS = 30.0
    REPEAT_AFTER = 600.0

    def __init__(self) -> None:
        self._tokens = float(self.BURST)
        self._stamp = time.monotonic()
        self._shown: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.suppressed = 0

    def allow(self, message: str) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.BURST, self._tokens + (now - self._stamp) / self.REFILL_SECONDS)
            self._stamp = now
            last = self._shown.get(message)
            if (last is not None and now - last < self.REPEAT_AFTER) or self._tokens < 1:
                self.suppressed += 1
                log.info("not shown to the user again: %s", message)
                return False
            self._tokens -= 1
            self._shown[message] = now
            self._shown.move_to_end(message)
            while len(self._shown) > 256:
                self._shown.popitem(last=False)
            return True


def _is_request_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def bad_arguments(exc: BaseException) -> bool:
    """The request's own arguments were wrong: malformed, unusable or out of the document.

    The one place that decides it: such an error is answered `-32602` with its message (a
    `ConfigError` says what to change), anything else `-32603`.
    """
    return isinstance(exc, ConfigError | OutOfSync) or isinstance(exc.__cause__, PayloadError)


def _routed(method: str) -> Any:  # a method of GoldiffProtocol, as pygls discovers it
    """A built-in LSP method that only hands its params to the server's own handler."""

    @lsp_method(method)
    def route(self: LanguageServerProtocol, params: Any) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(method)) is not None:
            yield user_handler, (params,), None

    return route


class GoldiffProtocol(LanguageServerProtocol):
    """Goldiff keeps its own copy of every document (`capture.documents`). pygls' workspace
    copy would repeat that work on every keystroke, so these built-ins only route to the
    handlers below; nothing in Goldiff reads `ls.workspace` documents.

    Every request gets an answer: pygls validates a message inside `json.loads` and, when
    validation fails, logs and drops it, leaving the client waiting forever. Here a message
    is parsed as plain JSON, then validated in `handle_message`, where a failure can be
    answered: `-32601` for an unknown method, `-32602` naming the field for invalid
    params (Goldiff's own payloads included), `-32603` for anything else.
    """

    lsp_text_document__did_open = _routed(types.TEXT_DOCUMENT_DID_OPEN)
    lsp_text_document__did_change = _routed(types.TEXT_DOCUMENT_DID_CHANGE)
    lsp_text_document__did_close = _routed(types.TEXT_DOCUMENT_DID_CLOSE)

    def structure_message(self, data: dict[str, Any]) -> Any:
        # json.loads calls this for every object in a message, nested ones included.
        return data

    def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("jsonrpc") != self.VERSION:
            log.warning("ignored a message that is not JSON-RPC 2.0: %.200r", message)
            if isinstance(message, dict) and _is_request_id(message.get("id")) and "method" in message:
                self._answer_error(message["id"], JsonRpcInvalidRequest("not a JSON-RPC 2.0 request"))
            return
        method = message.get("method")
        if method is None:  # the client's answer to one of our requests
            try:
                super().handle_message(super().structure_message(message))
            except JsonRpcException:
                log.warning("ignored a malformed response: %.200r", message)
            return
        request = "id" in message
        if request and not _is_request_id(message["id"]):
            log.warning("ignored a request whose id is neither a number nor a string: %.200r", message)
            return
        if not isinstance(method, str):
            if request:
                self._answer_error(message["id"], JsonRpcInvalidRequest("method must be a string"))
            return
        known = method == types.CANCEL_REQUEST or method in self.fm.builtin_features
        if not known and method not in self.fm.features:
            if request:
                self._answer_error(message["id"], JsonRpcMethodNotFound.of(method))
            else:
                log.debug("ignored notification for unknown method %r", method)
            return
        if request and self._shutdown and method != types.EXIT:
            self._answer_error(message["id"], JsonRpcInvalidRequest("the server is shutting down"))
            return
        fallback = JsonRPCRequestMessage if request else JsonRPCNotification
        try:
            structured = self._converter.structure(message, self.get_message_type(method) or fallback)
        except Exception as exc:
            text = invalid_params(method, exc)
            log.warning("%s", text)
            if request:
                self._answer_error(message["id"], JsonRpcInvalidParams(text))
            return
        super().handle_message(structured)

    def _answer_error(self, msg_id: Any, error: JsonRpcException) -> None:
        self._send_response(msg_id, None, error.to_response_error())

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        # A command whose arguments did not parse is the client's mistake: -32602, not -32603.
        if not future.cancelled() and (exc := future.exception()) is not None and bad_arguments(exc):
            self._request_futures.pop(msg_id, None)
            log.warning("invalid params for request %s: %s", msg_id, exc)
            self._answer_error(msg_id, JsonRpcInvalidParams(str(exc)))
            return
        super()._send_handler_result(future, msg_id=msg_id)

    # Futures started while a generator step runs (see `_run_generator`); None outside one.
    _started: list[Any] | None = None

    def _execute_handler(
        self, msg_id: Any, handler: Any, callback: Any, args: Any = None, kwargs: Any = None
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args=args, kwargs=kwargs)
        future = self._request_futures.get(msg_id)
        if future is None:
            return
        if self._started is not None:
            self._started.append(future)
        # pygls forgets a request's future when it answers, but never a notification's: every
        # keystroke (didChange is a generator handler here) would stay in the table for good.
        future.add_done_callback(lambda _done: self._request_futures.pop(msg_id, None))

    def _run_generator(self, future: Any, *, gen: Any, result_future: Any) -> None:
        """Make `$/cancelRequest` reach a running `workspace/executeCommand` handler.

        pygls runs a command as a task of its own, under an internal id, behind the
        request's future; cancelling the request only cancels that outer future, and the
        task (an export, a distillation) would run on unseen. Each task this step starts
        is cancelled with the request, so a command's `asyncio.CancelledError` handler
        runs and can stop its work. Only the tasks this step started are looked at, so a
        keystroke costs the same however long the server has run.
        """
        outer, self._started = self._started, []
        try:
            super()._run_generator(future, gen=gen, result_future=result_future)
            started = self._started
        finally:
            self._started = outer
        for inner in started:
            if inner is not result_future:
                result_future.add_done_callback(
                    lambda f, inner=inner: inner.cancel() if f.cancelled() else None
                )
