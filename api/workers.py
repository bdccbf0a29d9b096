"""Worker processes for `backstate serve --workers N`, each with its own listening socket.

uvicorn's own `workers=N` mode binds ONE socket and shares it between the worker processes.
asyncio's accept loop takes every pending connection at once, so when clients open several
keep-alive connections together they often all land in one process while the others idle
(measured with 2 workers and 16 keep-alive clients: 123% CPU in one process, 1% in the other;
single-process throughput, twice the tail latency). Here the parent binds one socket per
worker, all with SO_REUSEPORT on the same host:port, and Linux spreads new connections across
them by hash as they arrive (like nginx `reuseport` or gunicorn `--reuse-port`).

The parent keeps every socket open while it runs, so the connections the kernel hands to a
worker that dies wait in that socket's backlog until the replacement it starts on the same
socket takes them. SIGINT or SIGTERM stops the workers through uvicorn's graceful shutdown
(lifespan included). A supervisor that is killed outright takes its workers with it (Linux's
parent-death signal): orphaned workers would go on serving the port unsupervised, and a new
`backstate serve` would share it with them. Where SO_REUSEPORT does not balance (not Linux)
this falls back to uvicorn's shared socket.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn
from uvicorn._subprocess import get_subprocess
from uvicorn.config import STARTUP_FAILURE

APP = "api.app:create_app"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_S = 0.5  # how soon a stop signal is acted on
STOP_TIMEOUT_S = 30.0  # graceful shutdown allowed to the workers before they are killed

logger = logging.getLogger("uvicorn.error")


def serve_workers(workers: int, host: str, port: int, log_level: str) -> int:
    """Serve the app from `workers` processes on host:port until SIGINT/SIGTERM; the exit code."""
    if not reuseport_balances():
        uvicorn.run(APP, factory=True, workers=workers, host=host, port=port, log_level=log_level)
        return 0
    config = uvicorn.Config(APP, factory=True, host=host, port=port, log_level=log_level)
    try:
        sockets = bind_sockets(host, port, workers, config.backlog)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc)
        return STARTUP_FAILURE
    shown = f"[{host}]" if ":" in host else host
    port = sockets[0].getsockname()[1]
    logger.info("Listening on http://%s:%d: %d workers, a socket each", shown, port, workers)
    try:
        return _Supervisor(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()


def reuseport_balances() -> bool:
    """Whether listening sockets sharing a port through SO_REUSEPORT share its connections
    (Linux; elsewhere the option may exist without spreading connections)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` listening sockets on host:port (the first one's port when `port` is 0)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_listen(host, port, backlog))
            port = sockets[0].getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn decides
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        # Listening now puts the socket in the port's group at once: connections wait in its
        # backlog while its worker starts.
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Supervisor:
    """Runs one uvicorn worker per socket, restarts those that die, stops them on a signal."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.config = config
        self.sockets = sockets
        self.children: list[SpawnProcess] = []
        self.stopping = threading.Event()
        self.exit_code = 0

    def run(self) -> int:
        logger.info("Started parent process [%d]", os.getpid())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            for sock in self.sockets:
                self.children.append(self._spawn(sock))
            while not self.stopping.is_set():
                wait([child.sentinel for child in self.children], timeout=POLL_S)
                self._replace_dead()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("Stopping parent process [%d]", os.getpid())
        return self.exit_code

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        logger.info("Received %s, stopping the workers.", signal.Signals(sig).name)
        self.stopping.set()

    def _spawn(self, sock: socket.socket) -> SpawnProcess:
        # As uvicorn's own supervisor does: a spawned process that sets up logging and runs
        # Server.run(sockets=...), the socket passed down to it.
        target = functools.partial(_worker, self.config, os.getpid())
        child = get_subprocess(self.config, target, [sock])
        child.start()
        return child

    def _replace_dead(self) -> None:
        for index, child in enumerate(self.children):
            if child.exitcode is None or self.stopping.is_set():
                continue
            if child.exitcode == STARTUP_FAILURE:
                # The app cannot start (configuration, database): every restart would fail too.
                logger.error("Worker [%s] failed to start; stopping.", child.pid)
                self.exit_code = STARTUP_FAILURE
                self.stopping.set()
                return
            logger.warning(
                "Worker [%s] died (exit code %s); starting another.", child.pid, child.exitcode
            )
            self.children[index] = self._spawn(self.sockets[index])

    def _stop_all(self) -> None:
        for child in self.children:
            if child.exitcode is None:
                child.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self.children:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.exitcode is None:
                logger.warning("Worker [%s] still running; killing it.", child.pid)
                child.kill()
                child.join()


def _worker(config: uvicorn.Config, parent: int, sockets: list[socket.socket]) -> None:
    """A worker's main: SIGTERM (a graceful stop) when the supervisor dies, then serve."""
    _PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        return
    uvicorn.Server(config).run(sockets=sockets)
