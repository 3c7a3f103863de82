"""Recognise test runs and commits among the terminal commands a developer runs.

An episode knows whether the tests passed after it: the last recognised test run's exit
code decides. Recognised: pytest (also `python -m pytest`, `py.test`, and behind `uv run`,
`poetry run`, `pipenv run`, `hatch run`, `pdm run`), `npm test` / `npm run test` /
`npm t`, `yarn test`, `pnpm test`, `go test`, `cargo test`, `make test` / `make check`,
`tox`, `nox`. Environment assignments (`CI=1 pytest`) and chains (`cd x && pytest`) are
looked through; in a chain the last test command counts. A commit is a successful
`git commit` (or `git merge`/`git cherry-pick`/`git revert`, which also make commits).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")  # an environment assignment: `CI=1`
_WRAPPERS = {("uv", "run"), ("poetry", "run"), ("pipenv", "run"), ("hatch", "run"), ("pdm", "run")}
_SEPARATORS = re.compile(r"&&|\|\||;|\|")


def commands(command_line: str) -> Iterator[list[str]]:
    """The words of each command in a chain or pipeline (`a && b`, `a | b`, `a; b`)."""
    for part in _SEPARATORS.split(command_line):
        try:
            yield shlex.split(part)
        except ValueError:
            yield part.split()


def _words(words: list[str]) -> list[str]:
    while words and (ASSIGNMENT.match(words[0]) or words[0] in ("time", "sudo", "env", "exec", "command")):
        words = words[1:]
    while len(words) >= 2 and (words[0], words[1]) in _WRAPPERS:
        words = words[2:]
        while words and words[0].startswith("-"):
            words = words[1:]
    return words


def _is_test(words: list[str]) -> bool:
    if not words:
        return False
    head = words[0].rsplit("/", 1)[-1]
    rest = words[1:]
    if head in ("pytest", "py.test", "tox", "nox"):
        return True
    if re.fullmatch(r"python[0-9.]*", head) and len(rest) >= 2 and rest[0] == "-m":
        return rest[1] in ("pytest", "tox", "nox", "unittest")
    if head in ("npm", "yarn", "pnpm", "bun"):
        args = [w for w in rest if not w.startswith("-")]
        if args[:1] in (["test"], ["t"]) or args[:2] == ["run", "test"]:
            return True
    if head in ("go", "cargo") and rest[:1] == ["test"]:
        return True
    if head == "make":
        return any(w in ("test", "tests", "check") for w in rest if not w.startswith("-"))
    return False


def find_test_run(command_line: str) -> str | None:
    """The test command inside `command_line` (the last one in a chain), or None."""
    found = None
    for command in commands(command_line):
        words = _words(command)
        if _is_test(words):
            found = " ".join(words)
    return found


def is_commit(command_line: str) -> bool:
    """Whether the command line makes a git commit (when it exits 0)."""
    for command in commands(command_line):
        words = _words(command)
        if not words or words[0].rsplit("/", 1)[-1] != "git":
            continue
        args = words[1:]
        # Skip git's own options before the subcommand (-C dir, -c key=value, --no-pager).
        while args and args[0].startswith("-"):
            args = args[2:] if args[0] in ("-C", "-c") else args[1:]
        if args[:1] in (["commit"], ["merge"], ["cherry-pick"], ["revert"]):
            return True
    return False
