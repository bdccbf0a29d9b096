from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.engine import LoadedVersion, Runtime, RuntimeLimits
from runtime.sandbox.fetch import EgressPolicy, Fetcher


def bundle(machine: str, *, allow_read: str = "() => true", allow_write: str = "() => true",
           prelude: str = "", source: str = "npm:xstate") -> str:
    """A user bundle as smply's newer builds produce it: xstate imported, not inlined."""
    return (
        "import { createMachine, assign, send, sendParent, raise, cancel, choose, pure, spawn }"
        f" from {json.dumps(source)};\n{prelude}\n"
        f"export default createMachine({machine});\n"
        f"export const allowRead = {allow_read};\nexport const allowWrite = {allow_write};\n"
    )


_compiled: dict[tuple[int, str], LoadedVersion] = {}


def load(rt: Runtime, source: str) -> LoadedVersion:
    """`rt.compile(source)`, once per runtime and source: tests step the same bundles often."""
    key = (id(rt), source)
    if key not in _compiled:
        _compiled[key] = rt.compile(source)
    return _compiled[key]


@pytest.fixture(scope="session")
def runtime() -> Iterator[Runtime]:
    rt = Runtime(RuntimeLimits(window_s=5.0), fetcher=Fetcher(EgressPolicy(allow_loopback=True)))
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def strict_runtime() -> Iterator[Runtime]:
    """Every step in a VM reset to its version's snapshot (warm VMs off)."""
    rt = Runtime(RuntimeLimits(window_s=5.0, warm=False),
                 fetcher=Fetcher(EgressPolicy(allow_loopback=True)))
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def tight_runtime() -> Iterator[Runtime]:
    """Small limits so hostile machines are stopped quickly."""
    limits = RuntimeLimits(memory_bytes=48 << 20, slice_s=0.5, window_s=1.5, load_s=0.5)
    rt = Runtime(limits, fetcher=Fetcher(EgressPolicy(allow_loopback=True)))
    yield rt
    rt.close()


@dataclass
class Recorder:
    """A loopback HTTP server for fetch tests: records requests, answers after `delay_s`."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    status: int = 200
    body: bytes = b'{"n": 41}'
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def http_server() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(http.server.BaseHTTPRequestHandler):
        disable_nagle_algorithm = True
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            rec.requests.append({"method": self.command, "path": self.path,
                                 "headers": dict(self.headers),
                                 "body": self.rfile.read(length).decode()})
            time.sleep(rec.delay_s)
            self.send_response(rec.status)
            for name, value in rec.headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(rec.body)))
            self.end_headers()
            self.wfile.write(rec.body)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.url = f"http://127.0.0.1:{server.server_port}"
    yield rec
    server.shutdown()
    server.server_close()
