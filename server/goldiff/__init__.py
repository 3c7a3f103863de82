"""Goldiff: learn from what developers keep.

Goldiff records what a developer does with a coding model's suggestions, works out the
text they finally kept (the gold), distills a small local model from it and serves that
model through llama.cpp. This package is the language server, the trace store and the
command line; the public API is the store and the errors a caller may need to catch.
"""

from typing import Any

from goldiff.errors import GoldiffError

__version__ = "0.1.0"
__all__ = ["GoldiffError", "TraceStore", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported lazily: `goldiff serve` decides what may load before the store does.
    if name == "TraceStore":
        from goldiff.store import TraceStore

        return TraceStore
    raise AttributeError(name)
