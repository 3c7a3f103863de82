"""The commands the editor's palette and status bar call: mode, status, stats, models, distill, forget."""

from __future__ import annotations

import contextlib
import json
import resource
import sys
from pathlib import Path
from typing import Any

from goldiff import audit, protocol
from goldiff.capture.paths import uri_to_path
from goldiff.home import states_dir
from goldiff.progress import run_child
from goldiff.server import GoldiffServer
from goldiff.sources import states
from goldiff.sources.registry import Registry
from goldiff.store import forget as forget_recorded


def _peak_rss_kb() -> int:
    """This process's own peak resident memory. `ru_maxrss` survives exec on Linux, so a
    server started by a large process would report that process's peak; VmHWM does not."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def register(server: GoldiffServer) -> None:
    @server.command(protocol.SET_MODE)
    def set_mode(ls: GoldiffServer, *args: Any) -> dict[str, str]:
        ls.apply_settings({"mode": protocol.structure(list(args), protocol.SetModeArgs).mode})
        return {"mode": ls.settings.mode}

    @server.command(protocol.STATS)
    def stats(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        ls.store.flush()
        with contextlib.closing(ls.store.reader()) as db:
            return audit.stats(db, ls.store.path)

    @server.command(protocol.STATUS)
    def status(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        since = audit.start_of_today()
        with contextlib.closing(ls.store.reader()) as db:
            today = audit.acceptance_since(db, since)
            by_source = audit.acceptance_by_source(db, since)
            shadow = audit.shadow_stats(db, since)
        answering = ls.completion.answering()
        return {
            "mode": ls.settings.mode,
            # The model that answers what the user sees (the frontier's in shadow mode).
            "model": answering.get("model"),
            "answering": answering,
            "capture": ls.settings.capture.enabled,
            "home": str(ls.home),
            "acceptanceToday": today,
            "acceptanceBySource": by_source,
            "shadowToday": shadow,
        }

    @server.command(protocol.MODELS)
    def models(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """The model registry, for the editor's model picker (as `goldiff models list --json`)."""
        registry = Registry(ls.home)  # read afresh: `goldiff models` may have changed it
        rows = [{**e.__dict__, "exists": e.exists()} for e in registry.list()]
        return {"default": registry.default(), "models": rows}

    @server.command(protocol.SERVER_STATS)
    def server_stats(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """How the server itself is doing: handling times, queue depth, memory."""
        timings = sorted(ls.change_timings)

        def pct(p: float) -> float | None:
            return timings[min(len(timings) - 1, int(p * len(timings)))] * 1000 if timings else None

        return {
            "didChangeCount": len(timings),
            "didChangeP50Ms": pct(0.50),
            "didChangeP99Ms": pct(0.99),
            "queueDepth": ls.store.queue_depth(),
            # Handlers still running (or never forgotten): stays small however long it runs.
            "pendingHandlers": len(ls.protocol._request_futures),
            "messagesShown": ls.shown_messages,
            "messagesSuppressed": ls.messages.suppressed,
            "peakRssKb": _peak_rss_kb(),
            "engine": ls.completion.engine_status(),
        }

    @server.command(protocol.DISTILL)
    async def distill(ls: GoldiffServer, *args: Any) -> dict[str, Any]:
        """Distill in a child process: training must not weigh on (or crash) the server."""
        options = protocol.as_plain(args[0]) if args and args[0] else {}
        command = [sys.executable, "-m", "goldiff", "distill", "--json", "--home", str(ls.home)]
        for key, flag in (("name", "--name"), ("steps", "--steps"), ("base", "--base")):
            if options.get(key) is not None:
                command += [flag, str(options[key])]
        ls.store.flush()
        out = await run_child(command, "distillation failed")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result

    @server.command(protocol.FORGET)
    def forget(ls: GoldiffServer, *args: Any) -> dict[str, int]:
        workspace = protocol.forget_scope(args)
        if workspace and "://" not in workspace:
            workspace = Path(workspace).resolve().as_uri()
        elif workspace:
            path = uri_to_path(workspace)  # one spelling of the URI, as documents record it
            workspace = path.resolve().as_uri() if path else workspace
        ls.store.flush()
        # The engine's saved file states hold code too; they are a cache, so all of them go.
        states.forget(states_dir(ls.home))
        with contextlib.closing(ls.store.reader()) as db:
            return forget_recorded(db, workspace)
