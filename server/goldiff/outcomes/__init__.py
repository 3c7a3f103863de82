"""Outcomes: what became of every suggestion, and what the developer finally kept.

The rules (the README copies them):

- **Accepted**: the item's command `goldiff.accepted [id]` ran, or, for a client that
  sends nothing but standard LSP, the next edit at the suggestion's offset inserts exactly
  the suggestion's text (an edit that also rewrites the text just before the cursor, as a
  completion whose range starts at the line's beginning does, counts when it keeps that
  text unchanged).
- **Partial**: the `goldiff/suggestionPartiallyAccepted {id, acceptedLength}` notification
  (a length in UTF-16 units, as the client counts), or the next edit at the offset inserts
  a non-empty proper prefix of the suggestion. Each following edit that inserts the next
  piece of the suggestion right after the accepted part extends it; reaching the whole
  text makes it accepted. Any other edit in between ends that.
- **Rejected**, with a reason: `dismissed` (the notification, or the developer's next
  edit is somewhere else: the cursor left and the ghost text went with it), `typedOver`
  (the next edit at the offset is not a prefix of the suggestion), `replaced` (another
  suggestion was made for the same document before this one was decided), `timeout`
  (nothing decided it within 60 s, or it was still undecided when its file settled at a
  commit, a close or the server's exit). The item's command overrides an inferred
  rejection; a rejection notification never undoes an acceptance.
- **Span**: an accepted (or partly accepted) text is followed through every later edit,
  the editor's and external ones (a full-text change or a file changed on disk is diffed
  against the previous text so spans move precisely). Edits before it shift it, edits
  inside it change its content, an edit replacing part of it pulls its new text in, text
  typed exactly at its edges stays outside, and deleting all of it reverts it for good.
- **Survival**: at 30 s, 2 min, 5 min and 10 min after acceptance, the fraction of the
  accepted text still present: `max(0, 1 - levenshtein(accepted, span text) / len(accepted))`;
  0 once reverted. `suggestions.survival` holds `{"30": 1.0, "120": 0.8, ...}`,
  `suggestions.reverted` whether it was deleted whole.
- **Settle**: a document's suggestions settle when it has been idle for `settleSeconds`
  (default 10) and has no unsaved edits, or at the next commit (the workspace watcher's,
  or a successful `git commit` seen in the terminal; `server.outcomes.commit()`), or when the document
  closes or the server exits. Undecided suggestions wait for their timeout before an
  idle settle takes them.
- **Gold**: for an accepted or partial suggestion, the text occupying its span at settle
  (empty if reverted). For a rejected one, what the developer wrote at its place instead:
  the text typed at the offset from the moment it was rejected, cut at the end of the line
  (single-line suggestions) or of the block, the first blank line after some content
  (multi-line ones); empty if nothing was written there.
- **Episode**: one piece of work in a file region. It opens at the first suggestion in a
  region (the suggestion's whole line); later suggestions within 10 lines of the region
  join it and widen it to their lines; the region grows as the developer writes at its
  edges. It ends when all its suggestions have settled. Its gold diff is a unified diff
  (validated with unidiff, with the file's real line numbers) between the region's text
  before the first suggestion and after settle. Terminal commands run while it is open are
  linked to it; each recognised test run (pytest, npm/yarn/pnpm test, go test, cargo test,
  make test, tox, nox) while it is open or within 30 min after its end is recorded with
  it, and `tests_passed` is the last one's result. Its `detail.context` keeps what the
  first suggestion saw: the 12 lines around the region, the cursor in it and the last
  edits before it as diffs.
"""
