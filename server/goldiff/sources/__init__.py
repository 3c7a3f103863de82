"""Completion sources: the frontier (OpenAI-compatible, Anthropic), local GGUF models
through llama.cpp, and a deterministic source for tests, behind one interface (`base`).

Importing this package imports neither llama_cpp nor httpx clients; `local` and
`frontier` are imported where they are used.
"""
