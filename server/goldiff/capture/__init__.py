"""Capture: what the developer does, turned into records for the trace store.

`documents` mirrors open documents and turns LSP changes into edits, `redaction` masks
secrets before anything is written, `terminal` shapes terminal commands, `watcher`
records changes other programs make to the workspace.
"""
