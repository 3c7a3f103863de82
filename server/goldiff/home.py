"""Where Goldiff keeps its data.

`GOLDIFF_HOME` (or `--home`) names one folder holding `traces.db`, `models/`,
`exports/` and `cache/`; without either, the platform's user data folder is used. Every command and
the server resolve the home the same way, so tests only ever need to set one variable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import platformdirs

HOME_ENV = "GOLDIFF_HOME"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data home: the explicit path, else `$GOLDIFF_HOME`, else the user data dir."""
    if explicit:
        home = Path(explicit)
    elif os.environ.get(HOME_ENV):
        home = Path(os.environ[HOME_ENV])
    else:
        home = Path(platformdirs.user_data_dir("goldiff", appauthor=False))
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def store_path(home: Path) -> Path:
    return home / "traces.db"


def models_dir(home: Path) -> Path:
    path = home / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def states_dir(home: Path) -> Path:
    """The local engine's saved file states (`sources/states.py`): a cache, created on use."""
    return home / "cache" / "states"


def exports_dir(home: Path) -> Path:
    path = home / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_whole(path: Path, prefix: str, *parts: bytes) -> None:
    """Write `parts` to `path` so a reader sees the old file or the new one, never half of it:
    a temporary file `prefix*` beside it (created 0600), then a rename. None is left on failure."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.writelines(parts)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
