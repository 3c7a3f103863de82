"""`goldiff models pull` and `goldiff.pullModel` against a real HTTP server on loopback.

No model hub is reachable from the test machine, so a small `http.server` serves the tiny
GGUF the suite builds under the hub's URL layout (`/OWNER/REPO/resolve/REVISION/FILE`,
a redirect to a CDN path, the LFS SHA-256 in `X-Linked-Etag`), honours `Range`, and can
cut a download short, be slow, or serve bytes that are not a GGUF.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from goldiff.cli import main
from goldiff.errors import ConfigError, PullCancelled, PullError
from goldiff.sources import pull as pull_module
from goldiff.sources.pull import describe, pull, resolve_source
from goldiff.sources.registry import DEFAULT_MODEL_ENV, Registry
from lsprotocol import types

from tests.lsp_client import goldiff_client, server_env


@dataclass
class Hub:
    files: dict[str, bytes]  # "OWNER/REPO/FILE" -> content
    url: str = ""
    ranges: list[str | None] = field(default_factory=list)  # the Range header of each GET
    cut_after: int | None = None  # the next GET of a file stops after this many bytes
    state_sha: bool = True  # send X-Linked-Etag like the hub does for LFS files


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.do_GET(body=False)

        def do_GET(self, body: bool = True) -> None:
            parts = self.path.strip("/").split("/")
            if parts[:2] == ["api", "models"]:
                payload = json.dumps({"id": "/".join(parts[2:4]), "cardData": {"license": "apache-2.0"}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())
                return
            if len(parts) >= 5 and parts[2] == "resolve":
                # The hub answers on its own host with a redirect to its CDN, stating the SHA-256.
                key = "/".join([parts[0], parts[1], *parts[4:]])
                if key not in hub.files:
                    self.send_error(404)
                    return
                self.send_response(302)
                self.send_header("Location", f"/cdn/{key}")
                if hub.state_sha:
                    self.send_header("X-Linked-Etag", f'"{hashlib.sha256(hub.files[key]).hexdigest()}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            key = "/".join(parts[1:]) if parts[0] == "cdn" else "/".join(parts)
            data = hub.files.get(key)
            if data is None:
                self.send_error(404)
                return
            if body:
                hub.ranges.append(self.headers.get("Range"))
            start = 0
            if (rng := self.headers.get("Range")) is not None:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            content = data[start:]
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if not body:
                return
            if hub.cut_after is not None:
                cut, hub.cut_after = hub.cut_after, None
                self.wfile.write(content[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(content)

    return Handler


@contextlib.contextmanager
def serve_hub(files: dict[str, bytes]) -> Iterator[Hub]:
    hub = Hub(files)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_shipped_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(tmp_path / "no-shipped-model.gguf"))


@pytest.fixture
def hub(tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    files = {
        "goldiff/tiny/tiny-coder.gguf": tiny_gguf.read_bytes(),
        "goldiff/tiny/fake.gguf": b"not a model" * 10,
    }
    with serve_hub(files) as served:
        monkeypatch.setenv("HF_ENDPOINT", served.url)
        yield served


def test_pull_from_the_hub_layout_verifies_and_registers(tmp_path: Path, hub: Hub, tiny_gguf: Path) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    result = runner.invoke(
        main, ["models", "pull", "hf://goldiff/tiny/tiny-coder.gguf", "--home", str(home), "--json", "--use"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    expected = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert answer["name"] == "tiny-coder" and answer["sha256"] == expected and answer["verified"] is True
    assert answer["default"] is True and answer["resumedFrom"] == 0
    path = Path(answer["path"])
    assert path == home / "models" / "pulled" / "tiny-coder" / "tiny-coder.gguf"
    assert path.read_bytes() == tiny_gguf.read_bytes()
    assert not path.with_name("tiny-coder.gguf.part").exists()
    registry = Registry(home)
    entry = registry.get("tiny-coder")
    assert entry is not None and entry.lineage["sha256"] == expected
    assert entry.lineage["pulled_from"] == "hf://goldiff/tiny/tiny-coder.gguf"
    assert registry.default() == "tiny-coder"
    assert registry.resolve(None).model_path == path
    listed = runner.invoke(main, ["models", "list", "--home", str(home)])
    assert "* tiny-coder  [model]" in listed.output


def test_describe_says_size_checksum_and_licence_before_anything_is_fetched(
    tmp_path: Path, hub: Hub, tiny_gguf: Path
) -> None:
    info = describe("hf://goldiff/tiny/tiny-coder.gguf")
    assert info == {
        "filename": "tiny-coder.gguf",
        "kind": "url",
        "bytes": tiny_gguf.stat().st_size,
        "sha256": hashlib.sha256(tiny_gguf.read_bytes()).hexdigest(),
        "licence": "apache-2.0",
    }
    assert hub.ranges == []  # a HEAD request: nothing was downloaded
    assert describe(str(tiny_gguf)) == {
        "filename": tiny_gguf.name,
        "kind": "file",
        "bytes": tiny_gguf.stat().st_size,
    }
    with pytest.raises(PullError, match="HTTP 404"):
        describe("hf://goldiff/tiny/missing.gguf")
    result = CliRunner().invoke(
        main, ["models", "pull", "hf://goldiff/tiny/tiny-coder.gguf", "--home", str(tmp_path / "h")]
    )
    assert result.exit_code == 0, result.output
    assert "tiny-coder.gguf: 2.4 MiB, licence apache-2.0" in result.output
    assert "SHA-256 verified" in result.output


def test_an_interrupted_download_resumes_with_a_range_request(
    tmp_path: Path, hub: Hub, tiny_gguf: Path
) -> None:
    home = tmp_path / "home"
    hub.cut_after = 700_000
    with pytest.raises(PullError, match="resume"):
        pull(home, "hf://goldiff/tiny/tiny-coder.gguf")
    part = home / "models" / "pulled" / "tiny-coder" / "tiny-coder.gguf.part"
    assert part.stat().st_size == 700_000
    assert Registry(home).get("tiny-coder") is None  # nothing half-fetched is registered
    seen: list[tuple[int, int | None]] = []
    pulled = pull(home, "hf://goldiff/tiny/tiny-coder.gguf", progress=lambda d, t: seen.append((d, t)))
    assert hub.ranges[-1] == "bytes=700000-"
    assert pulled.resumed_from == 700_000 and pulled.verified
    assert Path(pulled.entry.path).read_bytes() == tiny_gguf.read_bytes()
    size = tiny_gguf.stat().st_size
    assert seen[0] == (700_000, size) and seen[-1] == (size, size)


def test_cancel_keeps_the_partial_file_and_the_next_pull_resumes(
    tmp_path: Path, hub: Hub, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull_module, "CHUNK", 64 * 1024)
    home = tmp_path / "home"
    blocks: list[int] = []
    with pytest.raises(PullCancelled):
        pull(
            home,
            f"{hub.url}/goldiff/tiny/resolve/main/tiny-coder.gguf",
            name="coder",
            progress=lambda d, t: blocks.append(d),
            cancelled=lambda: len(blocks) > 3,
        )
    kept = (home / "models" / "pulled" / "coder" / "tiny-coder.gguf.part").stat().st_size
    assert 0 < kept < tiny_gguf.stat().st_size
    pulled = pull(home, f"{hub.url}/goldiff/tiny/resolve/main/tiny-coder.gguf", name="coder")
    assert pulled.resumed_from == kept and pulled.entry.name == "coder"
    assert Path(pulled.entry.path).read_bytes() == tiny_gguf.read_bytes()


def test_a_wrong_checksum_or_a_file_that_is_not_gguf_is_refused(tmp_path: Path, hub: Hub) -> None:
    home = tmp_path / "home"
    with pytest.raises(PullError, match="not the expected"):
        pull(home, "hf://goldiff/tiny/tiny-coder.gguf", sha256="0" * 64)
    hub.state_sha = False
    with pytest.raises(PullError, match="not a GGUF"):
        pull(home, "hf://goldiff/tiny/fake.gguf")
    folder = home / "models" / "pulled"
    assert [p for p in folder.rglob("*") if p.is_file()] == []  # neither left a file behind
    assert Registry(home).list() == []
    with pytest.raises(PullError, match="HTTP 404"):
        pull(home, "hf://goldiff/tiny/missing.gguf")
    runner = CliRunner()
    refused = runner.invoke(main, ["models", "pull", "hf://goldiff/tiny/fake.gguf", "--home", str(home)])
    assert refused.exit_code == 1 and "not a GGUF model file" in refused.output


def test_sources_a_user_can_name(tmp_path: Path, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example/")
    assert (
        resolve_source("hf://o/r/sub/x.gguf@v2").location == "http://mirror.example/o/r/resolve/v2/sub/x.gguf"
    )
    assert resolve_source("https://example.com/a/b%20c.gguf").filename == "b c.gguf"
    assert resolve_source(tiny_gguf.as_uri()).kind == "file"
    for bad in ("hf://only/two", "https://example.com/model.bin", str(tmp_path / "missing.gguf")):
        with pytest.raises(ConfigError):
            resolve_source(bad)
    with pytest.raises(ConfigError, match="SHA-256"):
        pull(tmp_path, str(tiny_gguf), sha256="abc")


def test_a_local_file_is_copied_in_and_registered(tmp_path: Path, tiny_gguf: Path) -> None:
    home = tmp_path / "home"
    expected = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    pulled = pull(home, str(tiny_gguf), name="local-copy", sha256=expected)
    assert pulled.verified and not pulled.reused
    assert Path(pulled.entry.path).parent == home / "models" / "pulled" / "local-copy"
    with pytest.raises(ConfigError, match="usable model name"):
        pull(home, str(tiny_gguf), name="..")
    again = pull(home, str(tiny_gguf), name="local-copy", sha256=expected)
    assert again.reused  # the same file with the same checksum is not copied twice


async def test_pull_model_command_reports_progress_and_registers(tmp_path: Path, hub: Hub) -> None:
    home = tmp_path / "home"
    env = server_env(home, HF_ENDPOINT=hub.url, **{DEFAULT_MODEL_ENV: str(tmp_path / "none.gguf")})
    async with goldiff_client(home, env=env) as client:
        client.progress_reports.setdefault("pull-1", [])
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="goldiff.pullModel",
                arguments=[{"source": "hf://goldiff/tiny/tiny-coder.gguf", "progressToken": "pull-1"}],
            )
        )
        assert answer["name"] == "tiny-coder" and answer["verified"] is True
        about = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="goldiff.pullModel",
                arguments=[{"source": "hf://goldiff/tiny/tiny-coder.gguf", "describe": True}],
            )
        )
        assert about["licence"] == "apache-2.0" and about["sha256"] == answer["sha256"]
        models = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="goldiff.models", arguments=[])
        )
        assert [m["name"] for m in models["models"]] == ["tiny-coder"]
        reports = client.progress_reports["pull-1"]
        assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)
        percents = [r.percentage for r in reports if isinstance(r, types.WorkDoneProgressReport)]
        assert percents[-1] == 100 and percents == sorted(percents)
        with pytest.raises(Exception, match="not a GGUF"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="goldiff.pullModel",
                    arguments=[{"source": f"{hub.url}/cdn/goldiff/tiny/fake.gguf"}],
                )
            )
