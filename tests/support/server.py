"""Run the real server the way users meet it: uvicorn on a free port, in a thread or in a
separate process (`backstate serve`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def run_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a background thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@contextmanager
def run_server_processes(
    count: int, database_url: str, *, env: dict[str, str] | None = None, repo: Path = REPO
) -> Iterator[list[str]]:
    """`count` processes of `backstate serve` (of the checkout `repo`) on one database, started
    together; their URLs."""
    # One worker each unless asked: tests that want several processes start several servers.
    full_env = {**os.environ, "PYTHONPATH": str(repo), "BACKSTATE_WORKERS": "1", **(env or {})}
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(count):
            port = free_port()
            command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
            command += ["--database-url", database_url, "--log-level", "warning"]
            process = subprocess.Popen(command, cwd=repo, env=full_env)
            started.append((process, f"http://127.0.0.1:{port}"))
        for process, url in started:
            _wait_healthy(url, process)
        yield [url for _, url in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"backstate serve exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("backstate serve did not become healthy")
