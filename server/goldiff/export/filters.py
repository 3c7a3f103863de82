"""Which records an export takes: filters read from the CLI or a JSON object, checked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from goldiff.errors import ExportError
from goldiff.protocol import camel
from goldiff.records import Filters

OUTCOMES: tuple[str, ...] = ("accepted", "partial", "rejected", "pending")


class ExportFilters(Filters):
    """`records.Filters`, built from what a user typed and said back in camelCase."""

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> ExportFilters:
        """Filters from a JSON object (camelCase or snake_case keys), checked."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in (raw or {}).items():
            name = "".join("_" + c.lower() if c.isupper() else c for c in key)
            if name not in known:
                raise ExportError(
                    f"unknown export filter {key!r}; use one of: "
                    + ", ".join(sorted(camel(n) for n in known))
                )
            values[name] = value
        return cls.build(**values)

    @classmethod
    def build(cls, **values: Any) -> ExportFilters:
        out: dict[str, Any] = {}
        for key in ("since", "until"):
            if values.get(key) is not None:
                out[key] = parse_time(values[key], key)
        for key in ("workspace", "uri", "language", "source", "model"):
            if values.get(key) is not None:
                out[key] = str(values[key])
        if out.get("workspace") and "://" not in out["workspace"]:
            from goldiff.capture.paths import path_to_uri

            out["workspace"] = path_to_uri(Path(out["workspace"]).expanduser().resolve())
        outcome = values.get("outcome")
        if outcome is not None:
            items = [outcome] if isinstance(outcome, str) else list(outcome)
            names = tuple(str(i).strip() for s in items for i in str(s).split(",") if str(i).strip())
            bad = [n for n in names if n not in OUTCOMES]
            if bad:
                raise ExportError(f"unknown outcome {bad[0]!r}; use one of: {', '.join(OUTCOMES)}")
            out["outcome"] = names
        if values.get("min_survival") is not None:
            try:
                share = float(values["min_survival"])
            except (TypeError, ValueError):
                share = math.nan
            if not 0.0 <= share <= 1.0:
                raise ExportError("minSurvival is a share between 0 and 1, e.g. 0.8")
            out["min_survival"] = share
        if values.get("tests_passed") is not None:
            out["tests_passed"] = bool(values["tests_passed"])
        return cls(**out)

    def as_dict(self) -> dict[str, Any]:
        return {
            camel(f.name): getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


def parse_time(value: Any, what: str = "time") -> float:
    """Epoch seconds from a number or an ISO 8601 date/time.

    A time without a zone is local time, as the user reads their clock: `goldiff export
    --since` and `goldiff forget --since` with the same text mean the same instant.
    """
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import datetime

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ExportError(
            f"cannot read {what} {value!r}: give epoch seconds or an ISO date like 2026-11-27T09:00"
        ) from exc
    return dt.timestamp()  # a naive time is taken as local time
