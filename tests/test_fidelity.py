"""What the developer typed is what the store rebuilds, byte for byte, secrets aside.

A replayed history of code that talks about secrets all the time (a signing library: secret
keys passed around, tokens, passwords read from the environment) must come back from the
store exactly as committed; the one real secret in it comes back masked, same length.
"""

from __future__ import annotations

from pathlib import Path

from goldiff import records
from goldiff.replay import ReplayOptions, replay_async
from goldiff.store import open_database

from tests.test_replay import make_repo

SECRET = "sk-proj-Zq8wX2vR5tY9uI3oP7aS1dF4gH6jK0lMnB"
SIGNER_1 = '''"""Sign and verify values with a secret key."""

import hashlib
import hmac
import os


class Signer:
    default_digest_method = hashlib.sha1

    def __init__(self, secret_key, salt="itsdangerous.Signer", sep="."):
        secret_keys = [want_bytes(s) for s in secret_key]
        self.secret_keys = secret_keys
        self.salt = salt
        self.sep = sep

    def derive_key(self, secret_key=None):
        if secret_key is None:
            secret_key = self.secret_keys[-1]
        return hmac.new(secret_key, self.salt, self.default_digest_method).digest()
'''
SIGNER_2 = SIGNER_1.replace(
    "    def derive_key(self, secret_key=None):",
    "    def get_signature(self, value):\n"
    "        key = self.derive_key(secret_key=self.secret_keys[-1])\n"
    "        return base64_encode(hmac.new(key, value, hashlib.sha1).digest())\n\n"
    "    def derive_key(self, secret_key=None):",
)
SETTINGS = """import os

author = "Pallets"
token = os.environ.get("APP_TOKEN")
password = getpass.getpass("Password: ")
api_key: str | None = None
headers = {"Authorization": f"Bearer {token}"}


def factory(secret_key="secret-key", max_age=None):
    return Signer(secret_key=secret_key, max_age=max_age)


def connect(password=password, token=token):
    return Client(auth_token=token, password=password)
"""
KEYED = SETTINGS + f'\nOPENAI_API_KEY = "{SECRET}"\n'
HISTORY: list[tuple[str, dict[str, str | None]]] = [
    ("Signer", {"src/signer.py": SIGNER_1, "src/settings.py": SETTINGS}),
    ("Signatures", {"src/signer.py": SIGNER_2}),
    ("Configure the client", {"src/settings.py": KEYED}),
]


async def test_replayed_code_about_secrets_is_rebuilt_exactly(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, HISTORY)
    home = tmp_path / "home"
    await replay_async(repo, home, ReplayOptions(seed=3))
    db, _ = open_database(home / "traces.db")
    try:
        latest: dict[str, str] = {}
        for doc_id, uri, path in db.execute(
            "SELECT id, uri, path FROM documents WHERE skipped IS NULL ORDER BY rowid"
        ).fetchall():
            rebuilt = records.document_at(db, doc_id, uri=uri)
            assert rebuilt.verified
            latest[path] = rebuilt.text
    finally:
        db.conn.close()
    assert latest["src/signer.py"] == SIGNER_2
    assert latest["src/settings.py"] == KEYED.replace(SECRET, "*" * len(SECRET))
