"""Replay a small generated git history through the real server; read back what it kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from goldiff import records
from goldiff.cli import main
from goldiff.replay import ReplayOptions, replay_async
from goldiff.replay.developer import DeveloperProfile, accepted_length, hunks
from goldiff.replay.history import Commit
from goldiff.store import integrity, open_database

# Each commit: path -> new text (None deletes). Multi-byte text, a middle-of-line change,
# a deleted file and an excluded secret file are all in here on purpose.
HISTORY: list[tuple[str, dict[str, str | None]]] = [
    (
        "Start the package",
        {
            "pkg/core.py": "def add(a, b):\n    return a + b\n",
            "README.md": "# pkg\n\nAdds numbers.\n",
        },
    ),
    (
        "Multiply, and say hello",
        {
            "pkg/core.py": (
                "import math\n\n\ndef add(a, b):\n    return a + b\n\n\n"
                "def mul(a, b):\n    return a * b  # héllo 🎉\n"
            ),
            "pkg/util.py": "GREETING = 'wörld'\n\n\ndef greet(name):\n    return f'{GREETING}, {name}'\n",
        },
    ),
    (
        "Drop the README, keep a key",
        {
            "README.md": None,
            ".env": "API_KEY=sk-test-0123456789abcdef0123456789abcdef\n",
            "pkg/util.py": "GREETING = 'wörld 🎉'\n\n\ndef greet(name, loud=False):\n"
            "    text = f'{GREETING}, {name}'\n    return text.upper() if loud else text\n",
        },
    ),
    (
        "Add with a third term",
        {
            "pkg/core.py": (
                "import math\n\n\ndef add(a, b, c=0):\n    return a + b + c\n\n\n"
                "def mul(a, b):\n    return math.prod((a, b))  # héllo 🎉\n"
            ),
        },
    ),
]


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def make_repo(root: Path, history: list[tuple[str, dict[str, str | None]]] = HISTORY) -> list[str]:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    shas = []
    for message, files in history:
        for path, text in files.items():
            target = root / path
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(text.encode("utf-8"))
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", message)
        shas.append(git(root, "rev-parse", "HEAD").strip())
    return shas


def expected_states(history: list[tuple[str, dict[str, str | None]]]) -> dict[str, list[tuple[str, str]]]:
    """For each replayed file: (text when opened, text at its commit), commit by commit."""
    current: dict[str, str] = {}
    states: dict[str, list[tuple[str, str]]] = {}
    for _message, files in history:
        for path, text in sorted(files.items()):
            before = current.get(path, "")
            if text is None:
                current.pop(path, None)
                continue
            current[path] = text
            if path != ".env":
                states.setdefault(path, []).append((before, text))
    return states


def recorded_documents(home: Path, repo: Path) -> dict[str, list[records.DocumentText]]:
    """Every recorded document of the repository, in the order they were opened, rebuilt."""
    db, _ = open_database(home / "traces.db")
    try:
        out: dict[str, list[records.DocumentText]] = {}
        rows = db.execute(
            "SELECT id, uri, path FROM documents WHERE skipped IS NULL ORDER BY rowid"
        ).fetchall()
        for doc_id, uri, path in rows:
            assert uri == (repo / path).as_uri()
            out.setdefault(path, []).append(records.document_at(db, doc_id, uri=uri))
            first = records.document_at(db, doc_id, 1, uri=uri)
            out[path][-1].__dict__["opened_text"] = first.text
        return out
    finally:
        db.conn.close()


def commit_events(home: Path) -> list[dict[str, Any]]:
    db, _ = open_database(home / "traces.db")
    try:
        rows = db.execute("SELECT detail FROM events WHERE kind = 'commit' ORDER BY id").fetchall()
        return [json.loads(r[0]) for r in rows]
    finally:
        db.conn.close()


def assert_rebuilds_history(home: Path, repo: Path) -> None:
    docs = recorded_documents(home, repo)
    expected = expected_states(HISTORY)
    assert sorted(docs) == sorted(expected)
    for path, states in expected.items():
        got = [(d.__dict__["opened_text"], d.text) for d in docs[path]]
        assert got == states, path
        assert all(d.verified for d in docs[path])


async def test_replay_rebuilds_every_file_at_every_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shas = make_repo(repo)
    home = tmp_path / "home"
    result = await replay_async(repo, home, ReplayOptions(seed=1))
    assert (result.commits, result.files, result.deleted_files) == (4, 7, 1)  # .env opened, not kept
    assert not result.interrupted
    assert_rebuilds_history(home, repo.resolve())
    events = commit_events(home)
    assert [e["sha"] for e in events] == shas
    assert {e["source"] for e in events} == {"replay"}
    assert events[1]["subject"] == "Multiply, and say hello"
    # Typing is keystrokes, not whole files: every typed character is its own version,
    # except Enter, which brings the next line's indentation along; each accepted (or
    # partly accepted) suggestion is inserted as one version.
    db, _ = open_database(home / "traces.db")
    try:
        versions = db.execute("SELECT SUM(version - version_first + 1) FROM edits WHERE kind = 'change'")
        env_keys = len(HISTORY[2][1][".env"] or "")  # typed, but excluded by the server
        insertions = result.accepted + result.partial
        assert versions.fetchone()[0] == result.keystrokes - env_keys + _deletions(HISTORY) + insertions
        secret = db.execute("SELECT COUNT(*) FROM snapshots WHERE text LIKE '%sk-test-%'").fetchone()[0]
        assert secret == 0  # .env is excluded by the server's default globs
    finally:
        db.conn.close()


def _deletions(history: list[tuple[str, dict[str, str | None]]]) -> int:
    current: dict[str, str] = {}
    n = 0
    for _m, files in history:
        for path, text in sorted(files.items()):
            if text is not None and path != ".env":
                n += sum(1 for h in hunks(current.get(path, ""), text) if h.removed)
            if text is None:
                current.pop(path, None)
            else:
                current[path] = text
    return n


async def test_replay_resumes_where_the_store_says(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shas = make_repo(repo)
    home = tmp_path / "home"
    first = await replay_async(repo, home, ReplayOptions(max_commits=2))
    assert (first.commits, first.already_replayed, first.last_commit) == (2, 0, shas[1])
    second = await replay_async(repo, home, ReplayOptions())
    assert (second.commits, second.already_replayed, second.last_commit) == (2, 2, shas[3])
    third = await replay_async(repo, home, ReplayOptions())
    assert (third.commits, third.already_replayed) == (0, 4)
    assert [e["sha"] for e in commit_events(home)] == shas
    assert_rebuilds_history(home, repo.resolve())


class _InterruptAfterFirstCommit:
    """Progress that presses Ctrl-C (a real SIGINT to this process) once a commit is done."""

    def start(self, total_commits: int, already_replayed: int) -> None:
        pass

    def commit_started(self, commit: Commit) -> None:
        pass

    def typed(self, chars: int) -> None:
        pass

    def commit_done(self, commit: Commit) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    def message(self, text: str) -> None:
        pass


async def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shas = make_repo(repo)
    home = tmp_path / "home"
    stopped = await replay_async(repo, home, ReplayOptions(), _InterruptAfterFirstCommit())
    assert stopped.interrupted
    assert stopped.commits == 1
    assert [e["sha"] for e in commit_events(home)] == shas[:1]
    db, _ = open_database(home / "traces.db")
    try:
        assert integrity(db) == "ok"
        ended = db.execute("SELECT ended_at FROM sessions").fetchall()
        assert len(ended) == 1 and ended[0][0] is not None  # the server shut down in order
    finally:
        db.conn.close()
    rest = await replay_async(repo, home, ReplayOptions())
    assert (rest.commits, rest.already_replayed) == (3, 1)
    assert [e["sha"] for e in commit_events(home)] == shas


def test_cli_replays_and_reports(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shas = make_repo(repo)
    home = tmp_path / "home"
    runner = CliRunner()
    out = runner.invoke(
        main, ["replay", str(repo), "--home", str(home), "--range", f"{shas[0]}..{shas[2]}", "--json"]
    )
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["commits"] == 2 and summary["last_commit"] == shas[2]
    assert [e["sha"] for e in commit_events(home)] == shas[1:3]
    bad = runner.invoke(main, ["replay", str(tmp_path), "--home", str(home)])
    assert bad.exit_code == 1
    assert "not inside a git repository" in bad.output


@pytest.mark.parametrize(
    ("suggestion", "expected", "accepted"),
    [
        ("return a + b\n", "return a + b\n    x", 13),  # all of it: a full accept
        ("return a + c\n", "return a + b\n", 11),  # whole words up to where they differ
        ("returned", "return a", 0),  # not even the first word agrees
        ("", "anything", 0),
        ("(a, b)", "(a, c)", 4),
    ],
)
def test_accepted_length_follows_what_was_written(suggestion: str, expected: str, accepted: int) -> None:
    assert accepted_length(suggestion, expected) == accepted


def test_hunks_retype_only_what_changed() -> None:
    before = "def add(a, b):\n    return a + b\n"
    after = "def add(a, b, c=0):\n    return a + b + c\n"
    text = before
    for h in hunks(before, after):
        text = text[: h.start] + h.text + text[h.start + h.removed :]
    assert text == after
    assert [(h.removed, h.text) for h in hunks(before, after)] == [(0, ", c=0"), (0, " + c")]


# The deterministic test source (sources/deterministic.py): when the text before the
# cursor ends with AFTER, it suggests TEXT; `default` answers everything else.
RULES = {
    "rules": [
        {"after": "def add(a, b):\n    ", "text": "return a + b"},  # what was written: accept
        {"after": "def mul(a, b):\n    ", "text": "return a * c"},  # first words agree: partial
        {"after": "def greet(name):\n    ", "text": "print(name)"},  # wrong: typed over
    ],
    "default": "pass",
}
EAGER = DeveloperProfile(p_line_start=1.0, p_trigger_char=1.0, p_word_pause=0.3)


def with_suggestions(seed: int) -> ReplayOptions:
    settings = {"mode": "local", "local": {"model": "test:" + json.dumps(RULES)}}
    return ReplayOptions(seed=seed, settings=settings, profile=EAGER)


def suggestion_rows(home: Path) -> list[dict[str, Any]]:
    db, _ = open_database(home / "traces.db")
    try:
        rows = list(db.query("SELECT * FROM suggestions WHERE shadow_of IS NULL ORDER BY ts, rowid"))
        for row in rows:
            row["final_text"] = records.document_at(db, row["document_id"]).text
        return rows
    finally:
        db.conn.close()


async def test_suggestions_are_accepted_only_where_the_real_text_matched(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    home = tmp_path / "home"
    result = await replay_async(repo, home, with_suggestions(seed=5))
    assert result.completions_offered
    assert (result.accepted, result.partial) == (1, 1)
    assert result.rejected == result.suggestions - 2 > 0
    assert_rebuilds_history(home, repo.resolve())  # accepting never changes what gets written
    rows = suggestion_rows(home)
    # Suggestions shown in .env (excluded from capture) are not in the store.
    assert 0 < len(rows) <= result.suggestions
    by_outcome: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_outcome.setdefault(row["outcome"], []).append(row)
        kept = row["final_text"][row["offset"] : row["offset"] + len(row["text"])]
        if row["outcome"] == "accepted":
            assert kept == row["text"]
        elif row["outcome"] == "partial":
            n = row["accepted_length"]
            assert kept[:n] == row["text"][:n] and kept != row["text"]
        else:
            assert row["outcome"] == "rejected" and row["reason"] == "typedOver"
            assert accepted_length(row["text"], row["final_text"][row["offset"] :]) == 0
    assert sorted(by_outcome) == ["accepted", "partial", "rejected"]
    (accepted,) = by_outcome["accepted"]
    assert (accepted["text"], accepted["gold"]) == ("return a + b", "return a + b")
    (partial,) = by_outcome["partial"]
    assert (partial["text"], partial["accepted_length"]) == ("return a * c", len("return a * "))
    assert partial["gold"] == "return a * "
    greet = [r for r in by_outcome["rejected"] if r["text"] == "print(name)"]
    assert [r["gold"] for r in greet] == ["return f'{GREETING}, {name}'"]  # what was written instead


def store_fingerprint(home: Path) -> dict[str, Any]:
    """Everything the store holds, minus timestamps and generated ids.

    Typing runs are expanded to one entry per keystroke: how the writer batches them into
    rows depends on timing, not on what was recorded.
    """
    db, _ = open_database(home / "traces.db")
    try:
        docs = [r for r in db.query("SELECT id, uri, path, language, skipped FROM documents ORDER BY rowid")]
        index = {d.pop("id"): i for i, d in enumerate(docs)}
        edits: list[tuple[Any, ...]] = []
        for row in db.query("SELECT * FROM edits ORDER BY document_id, seq"):
            doc = index[row["document_id"]]
            inserted = row["inserted"]
            first = row["version_first"]
            if inserted is not None and first is not None and row["version"] - first + 1 == len(inserted) > 1:
                for i, ch in enumerate(inserted):
                    edits.append((doc, row["kind"], first + i, row["offset"] + i, 0, ch))
            else:
                edits.append((doc, row["kind"], row["version"], row["offset"], row["removed"], inserted))
        edits.sort(key=lambda e: (e[0], e[2] if e[2] is not None else -1))
        ids: dict[str, int] = {}
        suggestions = []
        for row in db.query("SELECT * FROM suggestions ORDER BY ts, rowid"):
            ids[row["id"]] = len(ids)
            row["document_id"] = index[row["document_id"]]
            for volatile in (
                "id",
                "session_id",
                "ts",
                "latency_ms",
                "settled_at",
                "resolved_at",
                "episode_id",
            ):
                row.pop(volatile)
            context = _stable(json.loads(row["context"] or "{}"))
            context.pop("serverMs", None)  # time spent, not what was recorded
            row["context"] = context
            suggestions.append(row)
        events = [
            (r["kind"], index.get(r["document_id"]), _stable(json.loads(r["detail"] or "{}")))
            for r in db.query("SELECT * FROM events ORDER BY id")
        ]
        suggestion_events = [
            (ids.get(r["suggestion_id"]), r["kind"], _stable(json.loads(r["detail"] or "{}")))
            for r in db.query("SELECT * FROM suggestion_events ORDER BY id")
        ]
        episodes = [
            (index[r["document_id"]], r["kind"], r["source"], r["before"], r["after"], r["gold_diff"])
            for r in db.query("SELECT * FROM episodes ORDER BY started_at, rowid")
        ]
        return {
            "documents": docs,
            "edits": edits,
            "suggestions": suggestions,
            "suggestion_events": suggestion_events,
            "events": events,
            "episodes": episodes,
        }
    finally:
        db.conn.close()


def _stable(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {
            k: _stable(v)
            for k, v in detail.items()
            if not (k in ("ts", "id", "at") or k.endswith(("_at", "_id", "Id", "At")))
        }
    if isinstance(detail, list):
        return [_stable(v) for v in detail]
    return detail


async def test_same_seed_same_store(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    runs = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        result = await replay_async(repo, tmp_path / name, with_suggestions(seed))
        assert result.suggestions > 0
        runs[name] = store_fingerprint(tmp_path / name)
    assert runs["a"] == runs["b"]
    assert runs["a"]["edits"] == runs["c"]["edits"]  # the same text typed either way
    assert runs["a"]["suggestions"] != runs["c"]["suggestions"]  # but asked at other places


async def test_a_request_budget_per_commit_bounds_the_completion_requests(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    options = with_suggestions(seed=5)
    options.max_requests_per_commit = 1
    result = await replay_async(repo, tmp_path / "home", options)
    assert result.requests == result.commits == 4  # every commit has a place to ask
    assert_rebuilds_history(tmp_path / "home", repo.resolve())  # the rest is typed all the same
