"""A git history as replay sees it: commits in order, each with its changed text files.

Replay never touches the repository's working tree: every file's text before and after
a commit is read from git's object store (`git show REV:PATH`, batched through one
`git cat-file --batch` process), so a user can replay the repository they are working in.
Merges are followed along their first parent (the change a merge brought into the
branch); renames are a deletion plus an addition. Files that Goldiff would not record
anyway (not UTF-8, binary, over the capture size limit) are left out.
"""

from __future__ import annotations

import fnmatch
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from goldiff.capture.paths import skip_reason
from goldiff.errors import GitError

# git's well-known empty tree: the "parent" of a root commit.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class FileChange:
    """One file a commit changed; `before` is None for an added file, `after` for a deleted one."""

    path: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Commit:
    sha: str
    author_time: int  # epoch seconds, as recorded by git
    message: str
    changes: tuple[FileChange, ...] = ()

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise GitError("git is not installed; replay reads history with it") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {' '.join(args[:2])} failed in {repo}: {message[-1] if message else '?'}")
    return done.stdout


def repository_root(path: Path) -> Path:
    """The top folder of the git repository holding `path`, or a clear error."""
    if not path.exists():
        raise GitError(f"{path} does not exist; give the folder of a git repository")
    try:
        out = _git(path, "rev-parse", "--show-toplevel")
    except GitError as exc:
        raise GitError(f"{path} is not inside a git repository ({exc})") from exc
    return Path(out.decode().strip())


def list_commits(repo: Path, rev_range: str | None = None) -> list[str]:
    """Commit ids of `rev_range` (default: all of HEAD), oldest first, along first parents.

    A range `A..B` excludes A itself, as `git log A..B` does; a single revision `B` means
    everything up to and including B.
    """
    spec = rev_range or "HEAD"
    args = ["rev-list", "--reverse", "--first-parent"]
    if ".." in spec:
        lo, _, hi = spec.partition("..")
        args += [hi or "HEAD", f"^{lo}"] if lo else [hi or "HEAD"]
    else:
        args.append(spec)
    try:
        out = _git(repo, *args, "--")
    except GitError as exc:
        raise GitError(f"cannot list commits of {spec!r}: {exc}. Use a range such as HEAD~20..HEAD") from exc
    return out.decode().split()


class _Blobs:
    """One long-lived `git cat-file --batch`, so reading many blobs costs one process."""

    def __init__(self, repo: Path) -> None:
        self._proc = subprocess.Popen(
            ["git", "-C", str(repo), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def read(self, rev: str, path: str) -> bytes | None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{rev}:{path}\n".encode())
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().decode().split()
        if len(header) < 3 or header[1] == "missing":
            return None
        size = int(header[2])
        data = self._proc.stdout.read(size)
        self._proc.stdout.read(1)  # the newline after every object
        return data

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)


def _decode(data: bytes | None) -> tuple[str | None, str | None]:
    if data is None:
        return None, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    return text, skip_reason(text, len(data))


def _included(path: str, include: tuple[str, ...]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not include or any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(name, g) for g in include)


def touches(repo: Path, sha: str, include: tuple[str, ...] = ()) -> bool:
    """Whether commit `sha` changes a file `include` selects (against its first parent)."""
    parents = _git(repo, "show", "-s", "--format=%P", sha).decode().split()
    names = _diff(repo, parents[0] if parents else None, sha, "--name-only")
    return any(_included(p, include) for p in names)


def _diff(repo: Path, parent: str | None, sha: str, what: str) -> list[str]:
    """`git diff -z` of `sha` against `parent` (the empty tree for a root commit), split into fields."""
    out = _git(repo, "diff", "--no-renames", what, "-z", parent or EMPTY_TREE, sha, "--")
    return [f for f in out.decode("utf-8", "surrogateescape").split("\x00") if f]


def read_commits(repo: Path, shas: list[str], include: tuple[str, ...] = ()) -> Iterator[Commit]:
    """Each commit of `shas` with the text of its changed files before and after.

    `include` holds glob patterns (`*.py`, `src/*`); empty means every text file.
    """
    blobs = _Blobs(repo)
    try:
        for sha in shas:
            yield _read_commit(repo, blobs, sha, include)
    finally:
        blobs.close()


def _read_commit(repo: Path, blobs: _Blobs, sha: str, include: tuple[str, ...]) -> Commit:
    meta = _git(repo, "show", "-s", "--format=%P%x00%at%x00%B", sha).decode("utf-8", "replace")
    parents, at, message = meta.split("\x00", 2)
    parent = parents.split()[0] if parents.split() else None
    fields = _diff(repo, parent, sha, "--name-status")
    changes: list[FileChange] = []
    for status, path in zip(fields[::2], fields[1::2], strict=False):
        if not _included(path, include):
            continue
        before, why_before = _decode(blobs.read(parent, path)) if parent and status != "A" else (None, None)
        after, why_after = _decode(blobs.read(sha, path)) if status != "D" else (None, None)
        if why_before or why_after or before == after:
            continue  # not text Goldiff records, or a mode change only
        changes.append(FileChange(path=path, before=before, after=after))
    changes.sort(key=lambda c: c.path)
    return Commit(sha=sha, author_time=int(at), message=message.strip(), changes=tuple(changes))
