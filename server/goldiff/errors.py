"""The one exception tree of Goldiff.

Every error a user can cause or a machine can throw at us is one of these, caught only at
the boundaries: the language server turns them into JSON-RPC errors or a
`window/showMessage` (`goldiff.rpc.error_response`: a `ConfigError` is the client's
mistake, `-32602`), the command line into a `click.ClickException`. Anything else that
escapes is a bug.

    GoldiffError
    ├── ConfigError              settings or arguments that cannot work; says what to change
    │   ├── PayloadError         a command's arguments or a notification have the wrong shape
    │   └── GitError             a repository or revision range replay cannot read
    ├── StoreError               the trace store cannot be opened or written
    │   ├── StoreCorruptError    the file is not a usable SQLite database (moved aside)
    │   └── StoreWriteError      disk full, read-only file system, locked too long
    ├── NotRecordedError         the store holds nothing for what was asked
    ├── ForgetError              `forget` met a table it cannot tell the owner of
    ├── SourceError              a completion source failed
    │   ├── ModelLoadError       a GGUF is missing, unreadable or not a model
    │   ├── EngineError          the local engine's process died or hung (restarted)
    │   └── FrontierError        the frontier endpoint refused or failed (401, 404, quota, 5xx)
    ├── PullError                a model could not be fetched or failed its checksum/GGUF check
    │   └── PullCancelled        the user stopped a download (its partial file is kept)
    ├── ExportError              an export cannot be written as asked
    │   └── ExportCancelled      the editor cancelled it
    ├── ReplayError              a replay could not go on (the server stopped)
    └── DistillError             training, GGUF export, quantization or evaluation failed
        ├── NotEnoughDataError   too few rows/tokens to train on; says how many are needed
        ├── ParityError          an exported GGUF disagrees with the model it came from
        ├── TokenizerError       a tokenizer cannot be trained, read or mapped to GGUF
        ├── GgufExportError      a model or adapter cannot be written as GGUF
        └── QuantizeError        llama.cpp could not quantize a file
"""

from __future__ import annotations


class GoldiffError(Exception):
    """Base class of every error Goldiff raises on purpose."""


class ConfigError(GoldiffError):
    """A setting or argument cannot work; the message says what to change."""


class PayloadError(ConfigError):
    """A custom notification or command argument did not have the expected shape."""


class GitError(ConfigError):
    """A repository or revision range that replay cannot read."""


class StoreError(GoldiffError):
    """The trace store cannot be opened or written."""


class StoreCorruptError(StoreError):
    """The store file is not a usable SQLite database."""


class StoreWriteError(StoreError):
    """Writing failed: disk full, read-only file system, or the database stayed locked."""


class NotRecordedError(GoldiffError):
    """The store holds nothing for what was asked."""


class ForgetError(GoldiffError):
    """The store has a table that `forget` cannot tell the owner of."""


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


class ExportCancelled(ExportError):
    """The editor cancelled an export; nothing was left behind."""


class ReplayError(GoldiffError):
    """The replay could not go on (the server stopped, the repository is unreadable)."""


class DistillError(GoldiffError):
    """Training, GGUF export, quantization or evaluation failed."""


class NotEnoughDataError(DistillError):
    """Too little data to train on."""


class ParityError(DistillError):
    """An exported GGUF's logits disagree with the model it was exported from."""


class TokenizerError(DistillError):
    """A tokenizer cannot be trained, read or mapped to GGUF (the message says why)."""


class GgufExportError(DistillError):
    """A model or adapter cannot be written as GGUF; the message says what to change."""


class QuantizeError(DistillError):
    """llama.cpp could not quantize a file; the message says what to check."""
