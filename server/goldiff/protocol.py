"""What Goldiff adds to LSP: every command and notification name, and their payloads.

The names below are the whole custom wire; `extension/src/protocol.ts` spells the same
names (a test compares them, and checks the server registers each). Every custom payload
on the wire is an attrs class here. Field names are snake_case in Python and camelCase on
the wire; `structure` and `unstructure` convert, and turn any malformed payload into a
`PayloadError` that says which field was wrong, so a handler never sees half-parsed data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from goldiff.errors import PayloadError

T = TypeVar("T")

# Notifications the client sends.
SUGGESTION_SHOWN = "goldiff/suggestionShown"
SUGGESTION_PARTIALLY_ACCEPTED = "goldiff/suggestionPartiallyAccepted"
SUGGESTION_REJECTED = "goldiff/suggestionRejected"
TERMINAL_COMMAND = "goldiff/terminalCommand"
NOTIFICATIONS = (SUGGESTION_SHOWN, SUGGESTION_PARTIALLY_ACCEPTED, SUGGESTION_REJECTED, TERMINAL_COMMAND)

# Commands the server executes (`workspace/executeCommand`).
ACCEPTED = "goldiff.accepted"  # carried by every inline completion item: [suggestionId]
SET_MODE = "goldiff.setMode"
EXPORT_TRACES = "goldiff.exportTraces"
STATS = "goldiff.stats"
STATUS = "goldiff.status"
MODELS = "goldiff.models"
SERVER_STATS = "goldiff.serverStats"
DISTILL = "goldiff.distill"
PROPOSE_EDIT = "goldiff.proposeEdit"
FORGET = "goldiff.forget"
COMMIT = "goldiff.commit"  # a commit boundary (replay, and the watcher's own record)
# Only under `goldiff serve --clock logical`: move the clock forward, running due timers.
ADVANCE_CLOCK = "goldiff.advanceClock"
PULL_MODEL = "goldiff.pullModel"  # fetch a GGUF into the registry (the picker's "Download...")
COMPARE = "goldiff.compare"  # the current model beside another on held-out gold
RECORDED = "goldiff.recorded"  # one document as the store holds it: rebuilt text, recent suggestions
# fmt: off
COMMANDS = (
    ACCEPTED, SET_MODE, EXPORT_TRACES, STATS, STATUS, MODELS, SERVER_STATS, DISTILL, PROPOSE_EDIT,
    FORGET, COMMIT, ADVANCE_CLOCK, PULL_MODEL, COMPARE, RECORDED,
)
# fmt: on

MODES = ("frontier", "local", "shadow")
PROVIDERS = ("openai", "anthropic")
EXPORT_FORMATS = ("sft", "preference", "kto", "edits", "openai", "parquet")
ROW_FORMATS = ("sft", "preference", "kto", "edits")  # the row shapes `openai` and `parquet` carry

# The `languageId` of a file Goldiff opens itself (replay, a change on disk), by suffix.
# fmt: off
LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".jsx": "javascriptreact",
    ".ts": "typescript", ".tsx": "typescriptreact", ".json": "json", ".md": "markdown",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".rs": "rust", ".go": "go", ".c": "c",
    ".h": "c", ".cpp": "cpp", ".java": "java", ".sh": "shellscript", ".rb": "ruby",
    ".html": "html", ".css": "css",
}
# fmt: on


def language_of(path: str) -> str:
    return LANGUAGES.get(PurePosixPath(path).suffix.lower(), "plaintext")


# When an accepted suggestion's survival is measured (seconds after acceptance): the keys of
# `suggestions.survival`, written by the outcome tracker and read by stats and exports.
CHECKPOINTS: tuple[int, ...] = (30, 120, 300, 600)
REJECT_REASONS: tuple[str, ...] = ("dismissed", "typedOver", "replaced", "timeout")


@attrs.define
class SuggestionShown:
    id: str


@attrs.define
class SuggestionPartiallyAccepted:
    id: str
    accepted_length: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.define
class SuggestionRejected:
    id: str
    reason: str = attrs.field(validator=attrs.validators.in_(REJECT_REASONS))


@attrs.define
class TerminalCommand:
    """A command the developer ran in the editor's terminal.

    Times are epoch milliseconds, as JavaScript's `Date.now()` gives them.
    """

    command_line: str
    cwd: str | None = None
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    output: str | None = None


@attrs.define
class SetModeArgs:
    mode: str = attrs.field(validator=attrs.validators.in_(MODES))


@attrs.define
class ExportArgs:
    format: str
    path: str | None = None
    filters: dict[str, Any] = attrs.field(factory=dict)
    # A work-done progress token the client created (its own notification shows the
    # percentages and Cancel); without one the server creates its own if it may.
    progress_token: str | None = None


@attrs.define
class PullModelArgs:
    """`goldiff.pullModel`: fetch a GGUF (hf://, http(s) URL or local path) and register it."""

    source: str
    name: str | None = None
    sha256: str | None = None
    progress_token: str | None = None
    describe: bool = False  # only say what would be fetched: size, stated SHA-256, licence


@attrs.define
class EditPosition:
    line: int = attrs.field(validator=attrs.validators.ge(0))
    character: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.define
class EditRange:
    start: EditPosition
    end: EditPosition


@attrs.define
class ProposeEditArgs:
    """`goldiff.proposeEdit`: rewrite `range` of `uri` as `instruction` asks.

    `episode` (the id the first turn returned) continues an earlier request on the same
    region; `range` may then be left out to mean the episode's region as it is now.
    """

    uri: str
    instruction: str
    range: EditRange | None = None
    episode: str | None = None
    ask_instruction: bool = False  # from the code action: a client with an input box asks first


@attrs.define
class CompareArgs:
    """`goldiff.compare`: `current` beside `other` (a model, or "frontier") on held-out gold."""

    current: str
    other: str
    limit: int = attrs.field(default=200, validator=attrs.validators.ge(1))


@attrs.define
class RecordedArgs:
    """`goldiff.recorded`: what the store holds for `uri` ("Show What Was Recorded")."""

    uri: str
    limit: int = attrs.field(default=20, validator=[attrs.validators.ge(1), attrs.validators.le(500)])


@attrs.define
class RecordedSuggestion:
    """One suggestion made in the document, as recorded (secrets masked as in the store)."""

    id: str
    ts: float  # epoch seconds
    source: str | None
    model: str | None
    outcome: str | None  # accepted | partial | rejected; None while pending
    reason: str | None  # why it was rejected: dismissed, typedOver, ...
    shadow: bool  # a hidden answer beside the shown one (shadow mode)
    text: str
    gold: str | None  # what was kept in its span once the file settled
    accepted_length: int | None
    survival: float | None  # share still present at the last checkpoint


@attrs.define
class Recorded:
    """`goldiff.recorded`'s answer: the document's text rebuilt from the store."""

    uri: str
    version: int | None  # the version reached (None: the editor sent none)
    text: str
    verified: bool  # every step matched the hash recorded with it
    suggestions: list[RecordedSuggestion]  # newest first


def camel(name: str) -> str:
    """A Python field name as it is spelled on the wire: `exit_code` -> `exitCode`."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


converter = cattrs.Converter()


def _is_goldiff_payload(cls: type) -> bool:
    return attrs.has(cls) and cls.__module__.startswith("goldiff.")


def _camel_fields(make: Any) -> Any:
    """A cattrs hook factory that spells every field of a payload class in camelCase."""

    def factory(cls: type) -> Any:
        return make(cls, converter, **{f.name: override(rename=camel(f.name)) for f in attrs.fields(cls)})

    return factory


converter.register_structure_hook_factory(_is_goldiff_payload, _camel_fields(make_dict_structure_fn))

# Scalars are checked, never coerced: cattrs would turn `5` into the model name "5" and
# `"abc"` into the list ["a", "b", "c"]. Integers must fit SQLite's 64 bits, so a value
# that cannot be stored is refused here, at the boundary, and never reaches the writer.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STRING_CHARS = 16 * 1024 * 1024  # no Goldiff payload field is near this; documents are capped at 1 MB


def clean_text(text: str) -> str:
    """Lone surrogates (which no editor should send, but a client can) become U+FFFD.

    A lone surrogate (JSON allows "\ud800") has no UTF-8 form: SQLite, HTTP bodies and
    llama.cpp would all refuse it, and one bad character must not make a whole batch of the
    store's writer unwritable. Code-point length is kept, so offsets stay valid.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_STRING_CHARS:
        raise ValueError(f"string of {len(value)} characters is over the {MAX_STRING_CHARS} limit")
    return clean_text(value)


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {type(value).__name__}")
    return value


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("integer out of the 64-bit range")
    return value


def _strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    number = float(value) if abs(value) < 1e308 else float("inf")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    return number


def _strict_list(value: Any, cls: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    (item,) = cls.__args__
    return [converter.structure(v, item) for v in value]


converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(bool, _strict_bool)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook(float, _strict_float)
converter.register_structure_hook_func(lambda cls: getattr(cls, "__origin__", None) is list, _strict_list)
converter.register_unstructure_hook_factory(_is_goldiff_payload, _camel_fields(make_dict_unstructure_fn))


def as_plain(value: Any) -> Any:
    """pygls hands custom params over as nested namedtuples; turn them back into dicts."""
    if hasattr(value, "_asdict"):
        return {k: as_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    return value


def structure(value: Any, cls: type[T]) -> T:
    """Parse a wire payload into `cls`, or raise `PayloadError` saying what was wrong."""
    plain = as_plain(value)
    if isinstance(plain, list) and len(plain) == 1:
        # executeCommand passes arguments as a list; ours take one object.
        plain = plain[0]
    if not isinstance(plain, dict):
        raise PayloadError(f"{cls.__name__} expects a JSON object, got {type(plain).__name__}")
    try:
        return converter.structure(plain, cls)
    except cattrs.BaseValidationError as exc:
        detail = "; ".join(
            f"{_snake(str(path)) if path else ''} {err}".strip() for err, path in _flatten(exc)
        )
        raise PayloadError(f"invalid {cls.__name__}: {detail}") from exc
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"invalid {cls.__name__}: {exc}") from exc


def _flatten(exc: BaseException) -> list[tuple[BaseException, str]]:
    if isinstance(exc, cattrs.BaseValidationError):
        out: list[tuple[BaseException, str]] = []
        for sub in exc.exceptions:
            note = str((getattr(sub, "__notes__", None) or [""])[0])  # where cattrs met it
            out.extend((inner, path or note) for inner, path in _flatten(sub))
        return out
    return [(exc, "")]


unstructure = converter.unstructure


@attrs.define
class CommitArgs:
    """A commit boundary: the developer committed; pending suggestions settle here.

    Sent by `goldiff replay` after each replayed commit (the workspace watcher records
    commits it sees on disk the same way).
    """

    sha: str
    message: str = ""
    repository: str | None = None  # workspace folder URI of the repository
    author_time: float | None = None  # epoch seconds, as git recorded it
    source: str = "editor"  # editor | replay | watcher


@attrs.define
class AcceptedArgs:
    id: str


def accepted_id(args: Sequence[Any]) -> str:
    """`goldiff.accepted` takes `[id]`; an `{id}` object is accepted too."""
    plain = as_plain(list(args))
    if len(plain) == 1 and isinstance(plain[0], str):
        return str(plain[0])
    try:
        return structure(plain, AcceptedArgs).id
    except PayloadError as exc:
        raise PayloadError(f"{ACCEPTED} expects [suggestionId]: {exc}") from exc


@attrs.define
class AdvanceClockArgs:
    seconds: float = attrs.field(validator=attrs.validators.ge(0))


FORGET_USAGE = f'{FORGET} needs an explicit scope: [{{"workspace": PATH_OR_URI}}] or [{{"all": true}}]'


def forget_scope(args: Sequence[Any]) -> str | None:
    """The workspace `goldiff.forget` deletes, or None for everything.

    Deleting is not undoable, so only an explicit scope is obeyed: a missing argument,
    a typo in a key or an empty workspace is refused, never read as "everything".
    """
    plain = as_plain(list(args))
    arg = plain[0] if len(plain) == 1 else None
    if not isinstance(arg, dict):
        raise PayloadError(FORGET_USAGE)
    if unknown := sorted(str(k) for k in arg if k not in ("workspace", "all")):
        raise PayloadError(f"{FORGET_USAGE}; unknown key {', '.join(map(repr, unknown))}")
    if arg == {"all": True}:
        return None
    workspace = arg.get("workspace")
    if set(arg) == {"workspace"} and isinstance(workspace, str) and workspace.strip():
        return workspace
    raise PayloadError(FORGET_USAGE)
