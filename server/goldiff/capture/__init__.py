"""Capture: what the developer does, turned into records for the trace store.

`documents` mirrors open documents and turns LSP changes into edits, `redaction` masks
secrets before anything is written, `recorder` shapes documents and terminal commands
into records, `watcher` records changes other programs make to the workspace.
"""
