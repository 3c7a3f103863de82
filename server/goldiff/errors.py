"""The one exception tree of Goldiff.

Every error a user can cause or a machine can throw at us is one of these, caught only at
the boundaries: the language server turns them into JSON-RPC errors or a
`window/showMessage` (`goldiff.rpc.bad_arguments`: a `ConfigError` is the client's
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


class ConfigError(GoldiffError): ...


class PayloadError(ConfigError): ...


class GitError(ConfigError): ...


class StoreError(GoldiffError): ...


class StoreCorruptError(StoreError): ...


class StoreWriteError(StoreError): ...


class NotRecordedError(GoldiffError): ...


class ForgetError(GoldiffError): ...


class SourceError(GoldiffError): ...


class ModelLoadError(SourceError): ...


class EngineError(SourceError): ...


class FrontierError(SourceError): ...


class PullError(GoldiffError): ...


class PullCancelled(PullError): ...


class ExportError(GoldiffError): ...


class ExportCancelled(ExportError): ...


class ReplayError(GoldiffError): ...


class DistillError(GoldiffError): ...


class NotEnoughDataError(DistillError): ...


class ParityError(DistillError): ...


class TokenizerError(DistillError): ...


class GgufExportError(DistillError): ...


class QuantizeError(DistillError): ...
