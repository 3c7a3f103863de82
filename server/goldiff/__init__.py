"""Goldiff: learn from what developers keep.

Goldiff records what a developer does with a coding model's suggestions, works out the
text they finally kept (the gold), distills a small local model from it and serves that
model through llama.cpp. This package is the language server, the trace store and the
command line; the public API is the store and the errors a caller may need to catch.
"""

from goldiff.errors import GoldiffError
from goldiff.store import TraceStore

__version__ = "0.1.0"
__all__ = ["GoldiffError", "TraceStore", "__version__"]
