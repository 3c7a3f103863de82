"""The one exception tree of Goldiff.

Every error a user can cause or a machine can throw at us is one of these, caught only at
the boundaries: the language server turns them into JSON-RPC errors or a
`window/showMessage`, the command line into a `click.ClickException`. Anything else that
escapes is a bug.

    GoldiffError
    ├── ConfigError            settings or arguments that cannot work; says what to change
    ├── StoreError             the trace store cannot be opened or written
    │   ├── StoreCorruptError  the file is not a usable SQLite database (moved aside)
    │   └── StoreWriteError    disk full, read-only file system, locked too long
    ├── SourceError            a completion source failed
    │   ├── ModelLoadError     a GGUF is missing, unreadable or not a model
    │   ├── EngineError        the local engine's process died or hung (restarted)
    │   └── FrontierError      the frontier endpoint refused or failed (401, 404, quota, 5xx)
    ├── PullError              a model could not be fetched or failed its checksum/GGUF check
    │   └── PullCancelled      the user stopped a download (its partial file is kept)
    ├── ExportError            an export cannot be written as asked
    └── DistillError           training, GGUF export, quantization or evaluation failed
        ├── NotEnoughDataError too few rows/tokens to train on; says how many are needed
        └── ParityError        an exported GGUF disagrees with the model it came from
"""

from __future__ import annotations


class GoldiffError(Exception):
    """Base class of every error Goldiff raises on purpose."""


class ConfigError(GoldiffError):
    """A setting or argument cannot work; the message says what to change."""


class StoreError(GoldiffError):
    """The trace store cannot be opened or written."""


class StoreCorruptError(StoreError):
    """The store file is not a usable SQLite database."""


class StoreWriteError(StoreError):
    """Writing failed: disk full, read-only file system, or the database stayed locked."""


class SourceError(GoldiffError):
    """A completion source failed to produce a suggestion."""


class ModelLoadError(SourceError):
    """A local model could not be loaded."""


class EngineError(SourceError):
    """The local engine's process died or hung; it is being restarted."""


class FrontierError(SourceError):
    """The frontier endpoint refused or failed the request."""


class PullError(GoldiffError):
    """A model could not be fetched or failed its checks; the message says what to do."""


class PullCancelled(PullError):
    """The user stopped a download; the partial file stays for the next try to resume."""


class ExportError(GoldiffError):
    """An export cannot be written as asked."""


class DistillError(GoldiffError):
    """Training, GGUF export, quantization or evaluation failed."""


class NotEnoughDataError(DistillError):
    """Too little data to train on."""


class ParityError(DistillError):
    """An exported GGUF's logits disagree with the model it was exported from."""
