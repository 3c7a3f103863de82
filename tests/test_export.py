"""Exports from a real trace store: row shapes, filters, dedup, split, redaction, ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from goldiff.cli import main
from goldiff.errors import ExportError
from goldiff.export import ExportFilters, ExportOptions, export, load_rows
from goldiff.export.files import build_rows, split_rows
from goldiff.prompts import (
    EDIT_CURSOR,
    EDIT_REGION_END,
    EDIT_REGION_START,
    fim_prompt,
    format_edit_prompt,
    parse_edit_completion,
)
from goldiff.store import EditRecord, TraceStore, open_database

T0 = 1_790_000_000.0  # 2026-09-21, a fixed wall clock for the recorded rows
WS = "file:///work/app"

# (id, minutes after T0, path, language, source, model, outcome, prefix, suffix, text, gold, survival)
SUGGESTIONS: list[tuple[Any, ...]] = [
    (
        "s1",
        0,
        "calc.py",
        "python",
        "frontier",
        "gpt-x",
        "accepted",
        "def add(a, b):\n    ",
        "\n",
        "return a + b",
        "return a + b",
        {"30": 1.0, "600": 1.0},
    ),
    (
        "s2",
        1,
        "calc.py",
        "python",
        "frontier",
        "gpt-x",
        "partial",
        "def mul(a, b):\n    ",
        "\n",
        "return a * b  # product",
        "return a * b",
        {"30": 1.0, "600": 0.6},
    ),
    (
        "s3",
        2,
        "calc.py",
        "python",
        "frontier",
        "gpt-x",
        "rejected",
        "def sub(a, b):\n    ",
        "\n",
        "return b - a",
        "return a - b",
        None,
    ),
    (
        "s4",
        3,
        "ui.ts",
        "typescript",
        "local",
        "tiny-1",
        "accepted",
        "function hi() {\n  ",
        "\n}\n",
        "console.log('hi');",
        "console.log('hi');",
        {"30": 1.0},
    ),
    (
        "s5",
        4,
        "calc.py",
        "python",
        "frontier",
        "gpt-x",
        "rejected",
        "def div(a, b):\n    ",
        "\n",
        "pass",
        "",
        None,
    ),  # rejected, nothing written instead
    (
        "s6",
        5,
        "calc.py",
        "python",
        "frontier",
        "gpt-x",
        None,
        "def neg(a):\n    ",
        "\n",
        "return -a",
        None,
        None,
    ),  # still pending
    (
        "s7",
        6,
        "calc.py",
        "python",
        "local",
        "tiny-1",
        "accepted",
        "def add(a, b):\n    ",
        "\n",
        "return a + b",
        "return a + b",
        {"30": 1.0, "600": 0.9},
    ),  # dup of s1
    (
        "s8",
        7,
        "calc.py",
        "python",
        "frontier",
        "gpt-x",
        "accepted",
        "def sq(a):\n    ",
        "\n",
        "return a * a",
        "return a ** 2",
        {"30": 1.0, "120": 0.5},
    ),
]


def suggestion_row(spec: tuple[Any, ...], **extra: Any) -> dict[str, Any]:
    sid, minutes, path, lang, source, model, outcome, prefix, suffix, text, gold, survival = spec
    return {
        "id": sid,
        "session_id": "sess",
        "document_id": f"doc-{path}",
        "version": 1,
        "ts": T0 + 60 * minutes,
        "source": source,
        "model": model,
        "mode": source,
        "line": 1,
        "character": 4,
        "offset": len(prefix),
        "prefix": prefix,
        "suffix": suffix,
        "context": json.dumps({"language": lang}),
        "text": text,
        "latency_ms": 100.0 + minutes,
        "shown": 1,
        "outcome": outcome,
        "accepted_length": len(text) if outcome == "accepted" else None,
        "gold": gold,
        "settled_at": None if outcome is None else T0 + 60 * minutes + 30,
        "survival": json.dumps(survival) if survival is not None else None,
        **extra,
    }


def fill_store(home: Path, specs: list[tuple[Any, ...]] = SUGGESTIONS) -> Path:
    """A store as capture + outcomes leave it: a session, documents, settled suggestions."""
    home.mkdir(parents=True, exist_ok=True)
    store = TraceStore(home / "traces.db")
    store.record_session({"id": "sess", "started_at": T0 - 10, "workspace": WS, "mode": "frontier"})
    for path, lang in {(s[2], s[3]) for s in specs}:
        store.record_document(
            {
                "id": f"doc-{path}",
                "session_id": "sess",
                "uri": f"{WS}/{path}",
                "workspace": WS,
                "path": path,
                "language": lang,
                "opened_at": T0 - 5,
            }
        )
    for spec in specs:
        store.record_suggestion(suggestion_row(spec))
    store.close()
    return home / "traces.db"


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database, _ = open_database(fill_store(tmp_path / "home"))
    yield database
    database.conn.close()


def rows_of(db: Any, fmt: str, **kw: Any) -> list[dict[str, Any]]:
    filters = kw.pop("filters", ExportFilters())
    rows, _ = build_rows(db, ExportOptions(format=fmt, filters=filters, **kw))
    return rows


PROVENANCE = {"id", "ts", "workspace", "path", "language", "source", "model", "outcome"}


def test_sft_rows_are_fim_prompts_with_gold_completions(db: Any) -> None:
    rows = rows_of(db, "sft")
    # s5 (empty gold), s6 (pending) and s7 (same context and gold as s1) give no row.
    assert [(r["source"], r["outcome"], r["completion"]) for r in rows] == [
        ("frontier", "accepted", "return a + b"),
        ("frontier", "partial", "return a * b"),
        ("frontier", "rejected", "return a - b"),  # what the developer wrote instead
        ("local", "accepted", "console.log('hi');"),
        ("frontier", "accepted", "return a ** 2"),
    ]
    first = rows[0]
    assert first["prompt"] == "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n<|fim_middle|>"
    assert first["prefix"] == "def add(a, b):\n    " and first["suffix"] == "\n"
    assert first["suggestion"] == "return a + b"
    assert first["workspace"] == WS and first["path"] == "calc.py" and first["language"] == "python"
    assert first["ts"] == T0
    assert first["survival"] == [
        {"after_seconds": 30.0, "share": 1.0},
        {"after_seconds": 600.0, "share": 1.0},
    ]
    assert all(r.keys() >= PROVENANCE for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_preference_pairs_gold_against_what_the_model_said(db: Any) -> None:
    rows = rows_of(db, "preference")
    assert [(r["chosen"], r["rejected"], r["outcome"]) for r in rows] == [
        ("return a * b", "return a * b  # product", "partial"),
        ("return a - b", "return b - a", "rejected"),
        ("return a ** 2", "return a * a", "accepted"),  # accepted, then rewritten
    ]
    assert rows[1]["prompt"] == fim_prompt("def sub(a, b):\n    ", "\n")
    assert all(r.keys() >= PROVENANCE for r in rows)


def test_kto_label_is_accepted_and_survived(db: Any) -> None:
    rows = rows_of(db, "kto")
    labels = {r["completion"]: r["label"] for r in rows}
    assert labels == {
        "return a + b": True,
        "return a * b  # product": False,  # partial
        "return b - a": False,  # rejected
        "console.log('hi');": True,
        "pass": False,
        "return a * a": False,  # accepted but only half survived
    }
    # s1 (frontier) and s7 (local) said the same thing in the same context: one row.
    assert sum(r["completion"] == "return a + b" for r in rows) == 1


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"since": T0 + 60, "until": T0 + 180}, ["s2", "s3"]),
        ({"since": "2026-09-21T14:14:20Z"}, ["s2", "s3", "s4", "s7", "s8"]),
        ({"language": "typescript"}, ["s4"]),
        ({"source": "local"}, ["s4", "s7"]),
        ({"model": "gpt-x", "outcome": ["rejected"]}, ["s3"]),
        ({"outcome": "accepted,partial"}, ["s1", "s2", "s4", "s8"]),
        ({"minSurvival": 0.9}, ["s1", "s4"]),
        ({"workspace": "/elsewhere"}, []),
        ({"workspace": WS + "/"}, ["s1", "s2", "s3", "s4", "s8"]),
    ],
)
def test_filters_select_suggestions(db: Any, filters: dict[str, Any], expected: list[str]) -> None:
    rows = rows_of(db, "sft", filters=ExportFilters.from_mapping(filters))
    ids = {T0 + 60 * s[1]: s[0] for s in SUGGESTIONS}
    assert [ids[r["ts"]] for r in rows] == expected


def test_bad_filters_say_what_to_use() -> None:
    with pytest.raises(ExportError, match=r"unknown export filter 'langauge'.*language"):
        ExportFilters.from_mapping({"langauge": "python"})
    with pytest.raises(ExportError, match="unknown outcome 'acepted'"):
        ExportFilters.from_mapping({"outcome": "acepted"})
    with pytest.raises(ExportError, match="between 0 and 1"):
        ExportFilters.from_mapping({"minSurvival": 80})
    with pytest.raises(ExportError, match="ISO date"):
        ExportFilters.from_mapping({"since": "yesterday"})
    with pytest.raises(ExportError, match="unknown export format 'csv'"):
        ExportOptions(format="csv")


def test_tests_passed_filter_follows_the_episode(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home, SUGGESTIONS[:2])
    store = TraceStore(home / "traces.db")
    store.record_episode({"id": "ep-ok", "document_id": "doc-calc.py", "tests_passed": 1})
    store.record_episode({"id": "ep-bad", "document_id": "doc-calc.py", "tests_passed": 0})
    store.update_suggestion("s1", {"episode_id": "ep-ok"})
    store.update_suggestion("s2", {"episode_id": "ep-bad"})
    store.close()
    database, _ = open_database(home / "traces.db")
    passed = rows_of(database, "sft", filters=ExportFilters(tests_passed=True))
    failed = rows_of(database, "sft", filters=ExportFilters(tests_passed=False))
    assert [r["completion"] for r in passed] == ["return a + b"]
    assert [r["completion"] for r in failed] == ["return a * b"]
    assert passed[0]["tests_passed"] is True


def test_split_never_puts_a_test_context_in_training() -> None:
    # The same context recurs: early (train time) and late (test time).
    rows = [
        {"id": f"r{i}", "ts": float(i), "context_hash": ctx}
        for i, ctx in enumerate(["a", "b", "c", "a", "d", "e", "f", "g", "h", "a"])
    ]
    parts = split_rows(rows, test_fraction=0.2)
    assert parts.cutoff == 8.0
    assert [r["id"] for r in parts.test] == ["r8", "r9"]
    assert [r["id"] for r in parts.train] == ["r1", "r2", "r4", "r5", "r6", "r7"]
    assert parts.leaked == 2  # r0 and r3 share r9's context
    assert not {r["context_hash"] for r in parts.train} & {r["context_hash"] for r in parts.test}
    with pytest.raises(ExportError, match="at least 2 rows"):
        split_rows(rows[:1])


def test_split_export_writes_train_test_and_manifest(tmp_path: Path) -> None:
    # A context from early on comes back as the newest suggestion: it must leave training.
    late = (
        "s9",
        9,
        "calc.py",
        "python",
        "frontier",
        "gpt-x",
        "accepted",
        "def add(a, b):\n    ",
        "\n",
        "return a+b",
        "return a+b",
        {"30": 1.0},
    )
    database, _ = open_database(fill_store(tmp_path / "home", [*SUGGESTIONS, late]))
    out = tmp_path / "exp"
    result = export(database, ExportOptions(format="sft", split=True, test_fraction=0.3), out)
    train, test = load_rows(out / "train.jsonl"), load_rows(out)
    assert result.counts == {"train": len(train), "test": len(test)}
    assert [r["completion"] for r in test] == ["return a ** 2", "return a+b"]
    assert "return a + b" not in [r["completion"] for r in train]
    assert result.leaked == 1
    assert not {r["context_hash"] for r in train} & {r["context_hash"] for r in test}
    assert max(r["ts"] for r in train) < min(r["ts"] for r in test)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == result.counts and manifest["paths"]["test"] == "test.jsonl"


def test_reexport_is_byte_identical_and_new_rows_only_add_lines(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home, SUGGESTIONS[:4])
    database, _ = open_database(home / "traces.db")
    export(database, ExportOptions(format="kto"), tmp_path / "a.jsonl")
    export(database, ExportOptions(format="kto"), tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    database.conn.close()
    fill_store(home, SUGGESTIONS[4:])  # more suggestions later, some older ids re-recorded
    database, _ = open_database(home / "traces.db")
    export(database, ExportOptions(format="kto"), tmp_path / "c.jsonl")
    old = (tmp_path / "a.jsonl").read_text().splitlines()
    new = (tmp_path / "c.jsonl").read_text().splitlines()
    assert set(old) <= set(new) and len(new) > len(old)
    sft_ids = {r["id"] for r in rows_of(database, "sft")}
    assert not sft_ids & {json.loads(line)["id"] for line in new}  # the format is part of the id


def test_second_redaction_pass_masks_secrets_the_store_missed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home, SUGGESTIONS[:1])
    key = "AKIAIOSFODNN7EXAMPLE"
    database, _ = open_database(home / "traces.db")
    # As an older store (or a secret split across two edits) would hold it: unmasked.
    database.execute(
        "UPDATE suggestions SET prefix = ?, gold = ? WHERE id = 's1'",
        [f"aws_key = '{key}'\ndef add(a, b):\n    ", f"return a + b  # {key}"],
    )
    rows = rows_of(database, "sft")
    text = json.dumps(rows)
    assert key not in text
    assert rows[0]["prefix"] == "aws_key = '" + "*" * len(key) + "'\ndef add(a, b):\n    "
    assert rows[0]["completion"].startswith("return a + b  # ")


def test_no_code_exports_metrics_only(db: Any, tmp_path: Path) -> None:
    for fmt in ("sft", "kto", "preference"):
        out = tmp_path / f"{fmt}.jsonl"
        export(db, ExportOptions(format=fmt, no_code=True), out)
        text = out.read_text()
        for spec in SUGGESTIONS:
            for code in (spec[7], spec[9], spec[2]):  # prefix, suggestion, path
                assert json.dumps(code) not in text
        rows = load_rows(out)
        assert rows and all(r.keys() >= PROVENANCE for r in rows)
        assert not {"prompt", "completion", "chosen", "prefix", "suffix"} & set(rows[0])
    sft = load_rows(tmp_path / "sft.jsonl")
    assert sft[0]["gold_chars"] == len("return a + b") and sft[0]["exact"] is True
    assert sft[0]["path"] == load_rows(tmp_path / "kto.jsonl")[0]["path"]  # still groupable


def test_openai_rows_are_chat_messages(db: Any) -> None:
    rows = rows_of(db, "openai")
    assert len(rows) == 5
    roles = [[m["role"] for m in r["messages"]] for r in rows]
    assert roles == [["system", "user", "assistant"]] * 5
    assert rows[0]["messages"][1]["content"] == "calc.py (python):\ndef add(a, b):\n    <|cursor|>\n"
    assert rows[0]["messages"][2]["content"] == "return a + b"
    assert rows[0].keys() >= PROVENANCE
    with pytest.raises(ExportError, match="sft or edits"):
        ExportOptions(format="openai", rows="kto")


def test_openai_file_is_uploadable_and_keeps_provenance_beside_it(db: Any, tmp_path: Path) -> None:
    export(db, ExportOptions(format="openai"), tmp_path / "chat.jsonl")
    lines = load_rows(tmp_path / "chat.jsonl")
    meta = load_rows(tmp_path / "chat.meta.jsonl")
    assert [set(line) for line in lines] == [{"messages"}] * 5  # nothing the upload would refuse
    assert [m["id"] for m in meta] == [r["id"] for r in rows_of(db, "openai")]
    assert all(m.keys() >= PROVENANCE for m in meta)


def test_parquet_holds_the_sft_rows(db: Any, tmp_path: Path) -> None:
    export(db, ExportOptions(format="parquet", split=True, test_fraction=0.4), tmp_path / "pq")
    export(db, ExportOptions(format="sft", split=True, test_fraction=0.4), tmp_path / "js")
    for part in ("train", "test"):
        assert load_rows(tmp_path / "pq" / f"{part}.parquet") == load_rows(tmp_path / "js" / f"{part}.jsonl")


def test_edit_prompt_format_round_trips() -> None:
    prompt = format_edit_prompt(
        path="calc.py",
        region="def add(a, b):\n    pass\n",
        cursor=19,
        context_before="import math\n",
        context_after="\nprint(add(1, 2))\n",
        recent_edits=["--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-import os\n+import math\n"],
        instruction="implement add",
        language="python",
    )
    assert prompt == (
        "### File: calc.py (python)\n"
        "### Instruction\nimplement add\n"
        "### Recent edits\n--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-import os\n+import math\n"
        f"### Excerpt\nimport math\n{EDIT_REGION_START}def add(a, b):\n    {EDIT_CURSOR}pass\n"
        f"{EDIT_REGION_END}\nprint(add(1, 2))\n\n"
        f"### Rewrite\n{EDIT_REGION_START}"
    )
    answer = "def add(a, b):\n    return a + b\n" + EDIT_REGION_END + "junk after"
    assert parse_edit_completion(answer) == "def add(a, b):\n    return a + b\n"
    assert parse_edit_completion("never closed") is None


def test_edits_rows_come_from_episodes_and_the_recorded_document(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home, [])
    store = TraceStore(home / "traces.db")
    store.record_document(
        {
            "id": "doc-m",
            "session_id": "sess",
            "uri": f"{WS}/m.py",
            "workspace": WS,
            "path": "m.py",
            "language": "python",
            "opened_at": T0,
        }
    )
    text = "import os\n\n\ndef area(r):\n    pass\n\n\nprint(area(2))\n"
    store.record_edit(EditRecord("doc-m", "open", 1, T0, 0.0, inserted=text))
    # The developer's own edit before the episode: os -> math.
    store.record_edit(EditRecord("doc-m", "change", 2, T0 + 1, 1.0, offset=7, removed=2, inserted="math"))
    before = "def area(r):\n    pass\n"
    after = "def area(r):\n    return math.pi * r**2\n"
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def area(r):\n-    pass\n+    return math.pi * r**2\n"
    episode = {
        "id": "ep1",
        "session_id": "sess",
        "document_id": "doc-m",
        "kind": "completion",
        "source": "frontier",
        "started_at": T0 + 2,
        "ended_at": T0 + 60,
        # As outcomes records it: where the region sits once settled. The developer added
        # a line above it during the episode, so it moved down by 11 characters.
        "start_offset": 14 + 11,
        "end_offset": 14 + 11 + len(before),
        "before": before,
        "after": after,
        "gold_diff": diff,
        "tests_passed": 1,
        "detail": json.dumps({"suggestions": ["sx"], "test_runs": []}),
    }
    # The suggestion that opened the episode, made with the cursor after the indent.
    cursor = 14 + len("def area(r):\n    ")
    store.record_suggestion(
        {
            "id": "sx",
            "version": 2,  # made after the developer's own edit
            "document_id": "doc-m",
            "ts": T0 + 2,
            "source": "frontier",
            "model": "gpt-x",
            "offset": cursor,
            "outcome": "accepted",
            "text": "return math.pi * r**2",
        }
    )
    store.record_episode(episode)
    store.record_episode({**episode, "id": "ep-open", "gold_diff": None, "ended_at": None})
    store.close()
    database, _ = open_database(home / "traces.db")
    rows = rows_of(database, "edits")
    assert len(rows) == 1
    row = rows[0]
    assert row["prompt"] == format_edit_prompt(
        path="m.py",
        region=before,
        cursor=len("def area(r):\n    "),
        context_before="import math\n\n\n",
        context_after="\n\nprint(area(2))\n",
        recent_edits=["--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n-import os\n+import math\n \n"],
        language="python",
    )
    assert row["completion"] == after + EDIT_REGION_END
    assert parse_edit_completion(row["completion"]) == after
    assert row["gold_diff"] == diff and row["tests_passed"] is True
    assert (row["source"], row["model"], row["outcome"], row["ts"]) == (
        "frontier",
        "gpt-x",
        "accepted",
        T0 + 60,
    )
    openai = rows_of(database, "openai", rows="edits")
    assert openai[0]["messages"][1]["content"] == row["prompt"]


def test_cli_export_split_and_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill_store(home)
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        main,
        [
            "export",
            "--home",
            str(home),
            "--format",
            "sft",
            "--split",
            "--test-fraction",
            "0.4",
            "--out",
            str(out),
            "--language",
            "python",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["counts"] == {"train": 2, "test": 2}
    assert {r["language"] for r in load_rows(out / "train.jsonl") + load_rows(out)} == {"python"}
    result = runner.invoke(main, ["export", "--home", str(home), "--format", "sft", "--outcome", "won"])
    assert result.exit_code != 0 and "unknown outcome 'won'" in result.output
    result = runner.invoke(main, ["export", "--home", str(tmp_path / "empty"), "--format", "sft"])
    assert result.exit_code != 0 and "no trace store" in result.output
    default = runner.invoke(main, ["export", "--home", str(home), "--format", "kto"])
    assert default.exit_code == 0, default.output
    written = Path(json.loads(default.output)["paths"]["all"])
    assert written.parent == home / "exports" and written.suffix == ".jsonl"


def test_shadow_suggestions_train_sft_but_carry_no_judgement(tmp_path: Path) -> None:
    shadow = ("sh", 9, "calc.py", "python", "local", "tiny-1", None,
              "def mod(a, b):\n    ", "\n", "return a % b", "return a % b", None)  # fmt: skip
    home = tmp_path / "home"
    fill_store(home, [])
    store = TraceStore(home / "traces.db")
    store.record_suggestion(suggestion_row(shadow, shadow_of="s1"))
    store.close()
    database, _ = open_database(home / "traces.db")
    assert [r["completion"] for r in rows_of(database, "sft")] == ["return a % b"]
    assert rows_of(database, "kto") == [] and rows_of(database, "preference") == []
