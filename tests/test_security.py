"""Realistic secrets typed into files and terminals never reach the store or the logs."""

from __future__ import annotations

from pathlib import Path

from goldiff.capture.redaction import redact
from lsprotocol import types

from tests.lsp_client import Editor, goldiff_client

# (line as a developer would type it, the secret inside it)
FILE_SECRETS = [
    ('AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"', "AKIAIOSFODNN7EXAMPLE"),
    ('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ('GITHUB_TOKEN = "ghp_4f9K2mQ7xLp0aZ8vN3bR6tY1uW5cE2dH7jKs"', "ghp_4f9K2mQ7xLp0aZ8vN3bR6tY1uW5cE2dH7jKs"),
    ('openai.api_key = "sk-proj-Q2x9LmN4pR7tV1wZ3yB6cD8fG0hJ5kM"', "sk-proj-Q2x9LmN4pR7tV1wZ3yB6cD8fG0hJ5kM"),
    ('SLACK = "xoxb-1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"', "xoxb-1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ('stripe_key = "sk_live_51HqLyjWDarjtT1zdp7dcXgBfQ4"', "sk_live_51HqLyjWDarjtT1zdp7dcXgBfQ4"),
    ('password = "Tr0ub4dor&3-horse-battery"', "Tr0ub4dor&3-horse-battery"),
    ('DATABASE_URL = "postgres://admin:s3cr3tP4ssw0rd@db.internal:5432/app"', "s3cr3tP4ssw0rd"),
    ('jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"',
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("API_KEY=9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
]  # fmt: skip
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi3bWsMd2Yxq0R0t5Nn8TQmK9Hf\n"
    "Z4x8pQ2wE7rT1yU6iO9pA3sD5fG7hJ9kL1zX3cV5bN7mQ9wE2rT4yU6iO8pA0sD\n"
    "-----END RSA PRIVATE KEY-----\n"
)
TERMINAL_SECRETS = [
    ("export OPENAI_API_KEY=sk-proj-T7yU1iO3pA5sD7fG9hJ2kL4zX6cV8bN0", "sk-proj-T7yU1iO3pA5sD7fG9hJ2kL4zX6cV8bN0"),
    ('curl -H "Authorization: Bearer tok_8s7d6f5g4h3j2k1l0qwerty" https://api.example.com', "tok_8s7d6f5g4h3j2k1l0qwerty"),
    ("mysql -u root -pHunter2Secret! prod", "Hunter2Secret!"),
    ("PGPASSWORD=correcthorsebattery psql -h db -U app", "correcthorsebattery"),
    ("git clone https://deploy:glpat-xY7zW9vU5tS3rQ1pO8nM@gitlab.example.com/x.git", "glpat-xY7zW9vU5tS3rQ1pO8nM"),
]  # fmt: skip


def test_redact_masks_every_corpus_secret() -> None:
    found = 0
    for line, secret in [*FILE_SECRETS, *TERMINAL_SECRETS]:
        masked = redact(line)
        assert len(masked) == len(line)
        found += secret not in masked
    assert found == len(FILE_SECRETS) + len(TERMINAL_SECRETS)
    assert "MIIEpAIBAAKCAQEA" not in redact(PRIVATE_KEY)


async def test_secrets_typed_or_pasted_never_reach_store_or_logs(tmp_path: Path) -> None:
    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    log = tmp_path / "server.log"
    typed = (ws / "settings.py").as_uri()
    pasted = (ws / "keys.py").as_uri()
    async with goldiff_client(
        home, workspace=ws, server_args=["--log-file", str(log), "--verbose"]
    ) as client:
        editor = Editor(client)
        editor.open(typed, "")
        editor.open(pasted, "")
        offset = 0
        for line, _ in FILE_SECRETS:
            offset = editor.type(typed, offset, line + "\n")  # one key at a time
        editor.replace(pasted, 0, 0, "\n".join(line for line, _ in FILE_SECRETS) + "\n" + PRIVATE_KEY)
        editor.save(typed)
        for line, _ in TERMINAL_SECRETS:
            client.protocol.notify(
                "goldiff/terminalCommand",
                {"commandLine": line, "cwd": str(ws), "exitCode": 0, "output": f"$ {line}\nok"},
            )
        await client.workspace_execute_command_async(types.ExecuteCommandParams(command="goldiff.stats"))
    blobs = {p.name: p.read_bytes() for p in home.iterdir() if p.name.startswith("traces.db")}
    blobs["server.log"] = log.read_bytes()
    secrets = [s for _, s in FILE_SECRETS + TERMINAL_SECRETS] + ["MIIEpAIBAAKCAQEA3Tz2mr7SZiAM"]
    leaks = [(s, name) for s in secrets for name, blob in blobs.items() if s.encode() in blob]
    assert leaks == []
    assert len(secrets) == 16  # the corpus tried; every one is masked everywhere


def test_the_writer_redacts_every_text_column_but_ids_and_paths(tmp_path: Path) -> None:
    import json
    import sqlite3

    from goldiff.migrations import migrate
    from goldiff.store import SAFE_COLUMNS, TraceStore

    key = "sk-proj-" + "Q2x9LmN4pR7tV1wZ3yB6cD8fG0hJ5kM7aS2dF"
    store = TraceStore(tmp_path / "traces.db")
    # Rows as a new call site would write them: no list of fields to redact anywhere.
    store.record_episode({"id": "e1", "kind": "agent", "detail": json.dumps({"command": f"export K={key}"})})
    store.update_episode("e1", {"before": f'KEY = "{key}"\n', "source": key})
    store.record_event("note", session_id="s", detail={"text": f"token {key}", "nested": [{"k": key}]})
    store.record_terminal_command({"session_id": "s", "command_line": f"OPENAI_API_KEY={key} claude 'fix'"})
    store.record_proposal({"id": "p1", "instruction": f"use {key}", "context": json.dumps({"p": key})})
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("traces.db*"))
    assert key.encode() not in raw
    conn = sqlite3.connect(tmp_path / "traces.db")
    (detail,) = conn.execute("SELECT detail FROM episodes").fetchone()
    assert json.loads(detail) == {"command": "export K=" + "*" * len(key)}
    (event,) = conn.execute("SELECT detail FROM events WHERE kind = 'note'").fetchone()
    assert json.loads(event)["nested"] == [{"k": "*" * len(key)}]
    conn.close()
    # Every column declared safe exists: a typo would silently leave a column unredacted.
    db = __import__("sqlite_utils").Database(memory=True)
    migrate(db)
    columns = {c.name for t in db.table_names() for c in db[t].columns}
    assert columns >= SAFE_COLUMNS


def test_a_secret_typed_across_batches_is_masked_everywhere_and_rebuilds_verified(tmp_path: Path) -> None:
    from goldiff import audit
    from goldiff.store import EditRecord, TraceStore, open_database

    pasted = "sk-proj-" + "Zq8wX2vR5tY9uI3oP7aS1dF4gH6jK0lMnB"
    typed = "ghp_" + "4f9K2mQ7xLp0aZ8vN3bR6tY1uW5cE2dH7jKs"
    store = TraceStore(tmp_path / "traces.db")
    store.record_document({"id": "d", "session_id": "s", "uri": "file:///ws/k.py", "workspace": "file:///ws"})
    store.record_edit(EditRecord("d", "open", 1, 0.0, 0.0, inserted="x = 1\n"))
    # A paste holding a secret, then (in the same batch) an edit that closes its row.
    line = f'KEY = "{pasted}"\n'
    store.record_edit(EditRecord("d", "change", 2, 0.0, 0.0, offset=6, inserted=line))
    store.record_edit(EditRecord("d", "change", 3, 0.0, 0.0, offset=6 + len(line), inserted="y = 2\n"))
    # A token typed one key at a time, with the writer committing between keystrokes: the
    # rows written before it was whole are masked after, and their hashes follow.
    offset, version = 6 + len(line) + 6, 4
    for ch in f'TOKEN = "{typed}"\n':
        store.record_edit(EditRecord("d", "change", version, 0.0, 0.0, offset=offset, inserted=ch))
        offset, version = offset + 1, version + 1
        if version % 7 == 0:
            assert store.flush()
    # A key typed in bursts, committed after each: its start is a secret on its own and is
    # masked at once; the bursts that continue it must be masked too, though the stored
    # text they extend already reads as asterisks.
    grown = "sk-proj-" + "Rt5yU8iO1pA4sD7fG0hJ3kL6zX9cV2bN5mQ8wE"
    for burst in [f'GROWN = "{grown[:30]}', grown[30:36], grown[36:], '"\n']:
        store.record_edit(EditRecord("d", "change", version, 0.0, 0.0, offset=offset, inserted=burst))
        offset, version = offset + len(burst), version + 1
        assert store.flush()
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("traces.db*"))
    assert pasted.encode() not in raw and typed.encode() not in raw
    assert grown[30:36].encode() not in raw and grown[36:].encode() not in raw
    db, _ = open_database(tmp_path / "traces.db")
    rebuilt = audit.rebuild(db, "file:///ws/k.py")
    assert rebuilt.verified
    assert rebuilt.text == (
        f'x = 1\nKEY = "{"*" * len(pasted)}"\ny = 2\nTOKEN = "{"*" * len(typed)}"\n'
        f'GROWN = "{"*" * len(grown)}"\n'
    )


def test_a_secret_completed_after_a_snapshot_is_masked_in_the_snapshot_and_before_it(tmp_path: Path) -> None:
    """A row that masks one secret takes a snapshot; a secret it holds unfinished is masked there later.

    A password is a secret only once its closing quote (or a URL's `@`) is typed. Here its
    characters reach the store, in the snapshot a row took because it masked a token and in
    rows before that one, before the character that makes it a secret arrives.
    """
    from goldiff import audit
    from goldiff.store import EditRecord, TraceStore, open_database

    password, token = "s3cr3tP4ssw0rd", "ghp_" + "4f9K2mQ7xLp0aZ8vN3bR6tY1uW5cE2dH7jKs"
    slack, typed = (
        "xoxb-" + "1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "Tr0ub4dor&3-horse-battery",
    )
    store = TraceStore(tmp_path / "traces.db")
    url_line = f'U = "postgres://admin:{password}/db"; K = "{token}"\n'
    quoted = f'SLACK = "{slack}"\npassword = "{typed}"\n'
    for doc, bursts in {
        "url": [url_line[:29], url_line[29:61], url_line[61:]],  # the `@` is inserted below
        "quoted": [quoted[:17], quoted[17:-2], quoted[-2:]],
    }.items():
        store.record_document(
            {"id": doc, "session_id": "s", "uri": f"file:///ws/{doc}.py", "workspace": "file:///ws"}
        )
        store.record_edit(EditRecord(doc, "open", 1, 0.0, 0.0, inserted="x = 1\n"))
        offset, version = 6, 2
        for burst in bursts:  # typed one key at a time, committed after each burst
            for ch in burst:
                store.record_edit(EditRecord(doc, "change", version, 0.0, 0.0, offset=offset, inserted=ch))
                offset, version = offset + 1, version + 1
            assert store.flush()
    store.record_edit(
        EditRecord("url", "change", version, 0.0, 0.0, offset=6 + url_line.index("/db"), inserted="@h")
    )
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("traces.db*"))
    parts = (password[:8], password[8:], token[:12], slack[-12:], typed)
    assert [part for part in parts if part.encode() in raw] == []
    db, _ = open_database(tmp_path / "traces.db")
    url, quoted_doc = audit.rebuild(db, "file:///ws/url.py"), audit.rebuild(db, "file:///ws/quoted.py")
    assert url.verified and quoted_doc.verified
    assert url.text == f'x = 1\nU = "postgres://admin:{"*" * len(password)}@h/db"; K = "{"*" * len(token)}"\n'
    assert quoted_doc.text == f'x = 1\nSLACK = "{"*" * len(slack)}"\npassword = "{"*" * len(typed)}"\n'


def test_a_secret_typed_inside_auto_closed_quotes_keeps_its_closing_quote(tmp_path: Path) -> None:
    """The editor inserts `""` at once and the token is typed between: only the token is masked."""
    from goldiff import audit
    from goldiff.store import EditRecord, TraceStore, open_database

    typed = "ghp_" + "Jd7Qw2Lx9Rt4Vb6Nm1Zc8Hs3Kp5Yf0Ga2Ue4"
    store = TraceStore(tmp_path / "traces.db")
    store.record_document({"id": "d", "session_id": "s", "uri": "file:///ws/k.py", "workspace": "file:///ws"})
    store.record_edit(EditRecord("d", "open", 1, 0.0, 0.0, inserted="x = 1\n"))
    offset, version = 6, 2
    for burst in ["TOKEN = ", '""', *typed]:
        store.record_edit(EditRecord("d", "change", version, 0.0, 0.0, offset=offset, inserted=burst))
        offset, version = offset + (1 if burst == '""' else len(burst)), version + 1
        if version % 2:
            assert store.flush()  # committed every other keystroke: earlier rows are scrubbed later
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("traces.db*"))
    assert typed[-8:].encode() not in raw
    db, _ = open_database(tmp_path / "traces.db")
    rebuilt = audit.rebuild(db, "file:///ws/k.py")
    assert rebuilt.verified
    assert rebuilt.text == f'x = 1\nTOKEN = "{"*" * len(typed)}"'
