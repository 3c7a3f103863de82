"""Which terminal commands run a coding agent, and which agent.

A command line names an agent when its program (after environment assignments and the
usual launchers: `npx`, `bunx`, `uvx`, `pipx run`, `env`, `sudo`, `time`, `nohup`,
`python -m`) is one of the configured agents, compared by base name and, for npm scoped
packages, by the package name (`npx @openai/codex` is `codex`; `npx
@anthropic-ai/claude-code` is `claude`). A pipeline or `&&` chain counts when any of
its commands does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from goldiff.outcomes.testruns import ASSIGNMENT, commands

_LAUNCHERS = {"npx", "bunx", "pnpx", "uvx", "env", "sudo", "time", "nohup", "exec", "command"}
# npm package names of agents whose package is not named like their command.
_PACKAGES = {"claude-code": "claude", "gemini-cli": "gemini"}


def _program(words: list[str]) -> str | None:
    i = 0
    while i < len(words):
        word = words[i]
        if ASSIGNMENT.match(word) or word.startswith("-"):
            i += 1
            continue
        base = word.rsplit("/", 1)[-1] if not word.startswith("@") else word.split("/", 1)[-1]
        base = base.split("@", 1)[0]  # a version pin: "codex@latest"
        if base in _LAUNCHERS:
            i += 1
            continue
        if base == "pipx" and i + 1 < len(words) and words[i + 1] == "run":
            i += 2
            continue
        if re.fullmatch(r"python[0-9.]*", base) and i + 2 < len(words) and words[i + 1] == "-m":
            return words[i + 2]
        return _PACKAGES.get(base, base)
    return None


def agent_of(command_line: str, agents: Sequence[str]) -> str | None:
    """The configured agent `command_line` runs, or None."""
    wanted = {a.strip() for a in agents if a.strip()}
    if not wanted:
        return None
    for words in commands(command_line):
        program = _program(words)
        if program in wanted:
            return program
    return None
