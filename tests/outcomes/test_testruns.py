"""Which terminal commands are test runs, and which make commits."""

from __future__ import annotations

import pytest
from goldiff.outcomes.testruns import find_test_run, is_commit


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("pytest -q tests/", "pytest -q tests/"),
        ("python -m pytest -x", "python -m pytest -x"),
        ("python3.11 -m pytest", "python3.11 -m pytest"),
        (".venv/bin/pytest", ".venv/bin/pytest"),
        ("CI=1 PYTHONPATH=src pytest -k foo", "pytest -k foo"),
        ("uv run pytest", "pytest"),
        ("poetry run --quiet pytest", "pytest"),
        ("npm test", "npm test"),
        ("npm run test -- --watch=false", "npm run test -- --watch=false"),
        ("npm t", "npm t"),
        ("yarn test", "yarn test"),
        ("pnpm test", "pnpm test"),
        ("go test ./...", "go test ./..."),
        ("cargo test --release", "cargo test --release"),
        ("make test", "make test"),
        ("make -j4 check", "make -j4 check"),
        ("tox -e py311", "tox -e py311"),
        ("nox -s tests", "nox -s tests"),
        ("cd server && pytest", "pytest"),
        ("ruff check . && pytest -q", "pytest -q"),
        ("npm install", None),
        ("make build", None),
        ("go build ./...", None),
        ("python app.py", None),
        ("git commit -m 'pytest'", None),
        ("ls", None),
    ],
)
def test_recognises_test_runs(line: str, expected: str | None) -> None:
    assert find_test_run(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("git commit -m wip", True),
        ("git commit -am 'fix: thing'", True),
        ("git -C repo commit --amend --no-edit", True),
        ("git add . && git commit -m x", True),
        ("git merge feature", True),
        ("git status", False),
        ("git log --oneline", False),
        ("echo git commit", False),
    ],
)
def test_recognises_commits(line: str, expected: bool) -> None:
    assert is_commit(line) is expected
