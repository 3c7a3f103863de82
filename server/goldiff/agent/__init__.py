"""Agent edits: multi-turn edit requests, coding agents in the terminal, and what was kept.

The rules (the README copies them):

- **Edit request**: `goldiff.proposeEdit {uri, range, instruction, episode?}` (also the
  `Goldiff: Edit with model` code action on a selection). The range is widened to whole
  lines: that is the editable region. The mode's source rewrites it (`frontier` and
  `shadow`: the frontier, `local`: the local model; in shadow mode the local model's
  rewrite is recorded beside it, never shown) from the shared edit prompt
  (`goldiff.prompts.format_edit_prompt`: the instruction, the last edits as diffs, the
  region between its markers with `EDIT_CONTEXT_LINES` lines around it). The rewrite goes
  back as `workspace/applyEdit` with a change annotation that needs confirmation; the
  editor's answer decides the proposal: `applied: true` accepted, otherwise rejected.
- **Episode and turns**: the first request on a region opens an episode (kind `edit`,
  source `frontier`/`local`); a request with its `episode` id is its next turn (its range
  widens the region when it reaches outside). Every turn is a `proposals` row: the
  instruction, the context the model saw, the region before, the proposal, the outcome,
  the latency.
- **Coding agents**: a terminal command whose program is one of the `agents` setting
  (default claude, codex, aider, gemini, goose, opencode, cursor-agent; launchers such as
  `npx` are looked through) claims the changes on disk whose file time falls within its
  `[startedAt, endedAt]` (±1 s). Changes are buffered until the command's notification
  arrives (it comes at the command's end); one seen later, inside a recent run's window,
  is attributed on arrival. For an open document the editor's reload (the didChange that
  makes it equal to the disk) is the change; for a closed file, the change the watcher
  records, from the text we last saw (or the file at git HEAD). Each changed file opens
  an episode (kind `agent`, source the agent's name) over the changed lines, with one
  accepted proposal (the command line is its instruction).
- **Settle**: an episode ends like the outcomes' episodes: its document idle for
  `settleSeconds` with no unsaved edits, or a commit, the document's close or the server's
  exit; never while a proposal still waits for the editor's answer (until a final settle,
  which rejects it). The developer's edits at its edges widen its region.
- **Gold**: the episode's gold diff is a unified diff (validated with unidiff, real line
  numbers) from the region before its first turn to the settled region. Each proposal's
  `kept_share` is the share of its added non-blank lines (trailing spaces ignored, each
  occurrence counted once) present in the settled region; a proposal that only deletes is
  judged by its deleted lines that stay deleted. An agent's proposal whose kept share is 0
  at settle is marked rejected (the developer undid it). Terminal commands and test runs
  while the episode is open, and test runs up to 30 min after, are linked; `tests_passed`
  is the last one's result.
"""
