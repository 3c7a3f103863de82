"""The pure parts of agent edits: kept share, regions, and which commands are agents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from goldiff.agent.proposals import ProposalTracker, changed_lines
from goldiff.agent.recognise import agent_of
from goldiff.capture.documents import Document
from goldiff.clock import LogicalClock
from goldiff.outcomes.episodes import kept_share, whole_lines
from goldiff.protocol import TerminalCommand
from goldiff.settings import DEFAULT_AGENTS
from goldiff.store import TraceStore

BEFORE = "def f(x):\n    return x\n"
PROPOSAL = 'def f(x):\n    """Double x."""\n    return 2 * x\n'


@pytest.mark.parametrize(
    ("settled", "share"),
    [
        (PROPOSAL, 1.0),
        ('def f(x):\n    """Double x."""\n    return x\n', 0.5),
        ("def f(x):\n    return 2 * x   \n", 0.5),  # trailing spaces do not count
        (BEFORE, 0.0),
        ("", 0.0),
    ],
)
def test_kept_share_counts_the_added_lines_still_there(settled: str, share: float) -> None:
    assert kept_share(BEFORE, PROPOSAL, settled) == share


def test_kept_share_counts_each_occurrence_once() -> None:
    proposal = "a = 1\na = 1\n"
    assert kept_share("", proposal, "a = 1\n") == 0.5
    assert kept_share("", proposal, "a = 1\na = 1\nb = 2\n") == 1.0


def test_kept_share_of_a_deletion_is_what_stays_deleted() -> None:
    before = "a = 1\nb = 2\nc = 3\n"
    assert kept_share(before, "a = 1\n", "a = 1\n") == 1.0
    assert kept_share(before, "a = 1\n", "a = 1\nb = 2\n") == 0.5
    assert kept_share(before, before, "anything") is None  # a proposal that changes nothing


def test_whole_lines() -> None:
    text = "one\ntwo\nthree"
    assert whole_lines(text, 5, 6) == (4, 8)  # inside "two": the whole line with its newline
    assert whole_lines(text, 4, 8) == (4, 8)  # a range ending at a line's start stops there
    assert whole_lines(text, 9, 11) == (8, 13)  # the last line has no newline
    assert whole_lines(text, 2, 2) == (0, 4)


def test_changed_lines() -> None:
    before = "a\nb\nc\nd\n"
    after = "a\nB\nnew\nc\nd\n"
    b0, b1, a0, a1 = changed_lines(before, after)
    assert before[b0:b1] == "b\n" and after[a0:a1] == "B\nnew\n"
    b0, b1, a0, a1 = changed_lines("a\n", "a\nb\n")
    assert (b0, b1) == (2, 2) and "a\nb\n"[a0:a1] == "b\n"


@pytest.mark.parametrize(
    ("command", "agent"),
    [
        ('claude -p "fix the failing test"', "claude"),
        ("npx @openai/codex exec 'add logging'", "codex"),
        ("npx @anthropic-ai/claude-code@latest", "claude"),
        ("OPENAI_API_KEY=x aider --yes src/app.py", "aider"),
        ("python -m aider", "aider"),
        ("/usr/local/bin/goose run -t hi", "goose"),
        ("cd src && gemini -p 'refactor'", "gemini"),
        ("opencode run 'x'", "opencode"),
        ("cursor-agent -p 'x'", "cursor-agent"),
        ("pytest -q", None),
        ("echo claude", None),
        ("git commit -m 'codex'", None),
    ],
)
def test_agent_of(command: str, agent: str | None) -> None:
    assert agent_of(command, DEFAULT_AGENTS) == agent


def test_agent_of_uses_the_configured_list() -> None:
    assert agent_of("my-agent --go", ["my-agent"]) == "my-agent"
    assert agent_of("claude", []) is None


def test_fresh_store_has_the_proposals_table(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.db")
    try:
        db = store.reader()
        columns = [c.name for c in db.table("proposals").columns]
        db.conn.close()
    finally:
        store.close()
    assert columns == [
        "id", "episode_id", "session_id", "document_id", "turn", "ts", "kind", "source", "model", "mode",
        "shadow_of", "instruction", "range", "start_offset", "end_offset", "before", "context", "text",
        "outcome", "latency_ms", "kept_share", "settled_at", "detail",
    ]  # fmt: skip


def test_a_test_run_after_the_settle_keeps_the_kept_shares(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.db")
    clock = LogicalClock(1_000_000.0)
    tracker = ProposalTracker(store, clock=clock)
    doc = Document.new("file:///w/a.py", "python", 1, "def f():\n    pass\n")
    tracker.on_open(doc)
    episode, start, end = tracker.begin_turn(doc, 9, 13, episode_id=None, source="test")
    proposal = tracker.add_proposal(
        episode, start=start, end=end, text="    return 2\n", source="test", model="m",
        instruction="return 2", rng=None, context=None, latency_ms=1.0,
    )  # fmt: skip
    tracker.resolve(proposal.id, True)
    tracker.on_edit(doc, doc.replace_all("def f():\n    return 2\n", 2, "full", now=clock()))
    tracker.commit()
    clock.now += 60
    tracker.terminal_command(TerminalCommand("pytest", exit_code=0))  # linked to the settled episode
    store.flush()
    db = store.reader()
    detail, passed = db.execute("SELECT detail, tests_passed FROM episodes").fetchone()
    db.conn.close()
    store.close()
    assert passed == 1
    assert json.loads(detail)["kept_share"] == {proposal.id: 1.0}
