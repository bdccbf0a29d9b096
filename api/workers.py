"""Worker processes for `backstate serve --workers N`, with connections dealt out in turn.

The parent accepts every connection on the one listening socket and hands each to the next
worker in turn, passing the socket's file descriptor over a Unix socket pair (SCM_RIGHTS), as
Node's cluster module does by default. Letting the workers accept for themselves spreads
keep-alive connections badly: on uvicorn's shared socket, asyncio's accept loop takes every
pending connection at once, so clients that connect together often all landed in one process
while the other idled; with a socket per worker and SO_REUSEPORT, the kernel's hash split them
unevenly, and the busier worker set the tail latency. Dealt in turn they split evenly
(bench/FIGURES.md).
A worker serves the sockets it receives with uvicorn's own HTTP protocol, so each connection
behaves exactly as on a listening worker, graceful shutdown included.

When the workers divide evenly among the CPUs the process may use, each worker is pinned to one
CPU (the i-th worker to the i-th allowed CPU, round the CPUs again if there are more workers; a
replacement to its predecessor's), as nginx's
`worker_cpu_affinity auto` does; the kernel otherwise kept moving a worker's event loop and step
threads between the cores, and each hand-over of the GIL between threads on different cores cost
a cross-core wake-up and cold caches (pinned, less CPU per event and a lower tail: see
bench/FIGURES.md). With fewer workers than CPUs nothing is
pinned: a worker's wasm runs outside the GIL and can use a second core; nor with a number of
workers that would leave some CPUs more loaded than others.

A worker's end of its socket pair stays open in the parent, so connections handed to a worker
that dies wait there until the replacement it starts on the same pair takes them. SIGINT or
SIGTERM stops the workers through uvicorn's graceful shutdown (lifespan included). A supervisor
that is killed outright takes its workers with it (Linux's parent-death signal): orphaned
workers would go on serving unsupervised. Where descriptors cannot be passed (Windows) this
falls back to uvicorn's shared socket.
"""

from __future__ import annotations

import asyncio
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
from typing import Any

import uvicorn
from uvicorn._subprocess import get_subprocess
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE

from api.metrics import worker_died

APP = "api.app:create_app"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_S = 0.5  # how soon a stop signal is acted on
STOP_TIMEOUT_S = 30.0  # graceful shutdown allowed to the workers before they are killed
HAND_OVER_TIMEOUT_S = 1.0  # a worker whose pair is this full is passed over for the next one

logger = logging.getLogger("uvicorn.error")


def serve_workers(
    workers: int, host: str, port: int, log_level: str, *, pin: bool = True,
    log_config: dict[str, Any] | None = None,
) -> int:
    """Serve the app from `workers` processes on host:port until SIGINT/SIGTERM; the exit code.
    `pin`: pin each worker to a CPU when the workers divide evenly among them (`worker_cpus`).
    `log_config`: the logging set-up of each worker (`api/logs.py`; uvicorn's by default)."""
    logging_config = log_config or LOGGING_CONFIG
    if not hasattr(socket, "send_fds"):
        uvicorn.run(APP, factory=True, workers=workers, host=host, port=port, log_level=log_level,
                    log_config=logging_config)
        return 0
    config = uvicorn.Config(APP, factory=True, host=host, port=port, log_level=log_level,
                            log_config=logging_config)
    try:
        listener = _listen(host, port, config.backlog)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc)
        return STARTUP_FAILURE
    shown = f"[{host}]" if ":" in host else host
    port = listener.getsockname()[1]
    cpus = worker_cpus(workers) if pin else None
    logger.info("Listening on http://%s:%d: %d workers, connections dealt in turn%s", shown, port,
                workers, "" if cpus is None else f", pinned to CPUs {cpus}")
    try:
        return _Supervisor(config, listener, workers, cpus).run()
    finally:
        listener.close()


def worker_cpus(workers: int) -> list[int] | None:
    """The CPU each of `workers` workers is pinned to, or None to leave them to the kernel:
    pinned only where affinity exists and the workers divide evenly among the allowed CPUs
    (each CPU then serves as many workers, as it is dealt as many connections)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or workers % len(allowed) != 0:
        return None
    return [allowed[index % len(allowed)] for index in range(workers)]


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn decides
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listening at once: connections wait in the backlog while the workers start.
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.settimeout(POLL_S)  # the dealer checks for a stop this often
    return sock


class _Dealer:
    """Accepts connections and hands each to the next worker's socket pair, in turn."""

    def __init__(self, listener: socket.socket, pairs: list[socket.socket],
                 stopping: threading.Event):
        self._listener = listener
        self._pairs = pairs
        self._stopping = stopping
        self._turn = 0
        self._thread = threading.Thread(target=self._run, name="dealer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        if self._thread.ident is not None:  # started
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # e.g. out of file descriptors: try again shortly
                logger.warning("accept failed: %s", exc)
                time.sleep(POLL_S)
                continue
            with connection:  # the worker holds its own descriptor once handed over
                self.hand_over(connection)

    def hand_over(self, connection: socket.socket) -> bool:
        """Pass `connection` to the next worker that takes it; False (it is then closed) if
        none does."""
        for _ in range(len(self._pairs)):
            pair = self._pairs[self._turn]
            self._turn = (self._turn + 1) % len(self._pairs)
            try:
                socket.send_fds(pair, [b"c"], [connection.fileno()])
                return True
            except OSError as exc:  # that worker's pair is full (it is stuck) or broken
                logger.warning("could not hand a connection to a worker: %s", exc)
        return False


class _Supervisor:
    """Runs `workers` uvicorn workers fed by a dealer, restarts those that die, stops them on a
    signal."""

    def __init__(
        self, config: uvicorn.Config, listener: socket.socket, workers: int,
        cpus: list[int] | None,
    ) -> None:
        self.config = config
        self.cpus = cpus  # per worker index, or None: not pinned
        self.stopping = threading.Event()
        # (the dealer's end, the worker's end) per worker; both stay open while the parent
        # runs, so a replacement worker takes over what was handed to the one it replaces.
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(workers)]
        for dealt, _ in self.pairs:
            dealt.settimeout(HAND_OVER_TIMEOUT_S)
        self.dealer = _Dealer(listener, [dealt for dealt, _ in self.pairs], self.stopping)
        self.children: list[SpawnProcess] = []
        self.exit_code = 0

    def run(self) -> int:
        logger.info("Started parent process [%d]", os.getpid())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            self.children = [self._spawn(index) for index in range(len(self.pairs))]
            self.dealer.start()
            while not self.stopping.is_set():
                wait([child.sentinel for child in self.children], timeout=POLL_S)
                self._replace_dead()
        finally:
            self.stopping.set()
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for pair in self.pairs:
                for end in pair:
                    end.close()
        logger.info("Stopping parent process [%d]", os.getpid())
        return self.exit_code

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        logger.info("Received %s, stopping the workers.", signal.Signals(sig).name)
        self.stopping.set()

    def _spawn(self, index: int) -> SpawnProcess:
        # As uvicorn's own supervisor does: a spawned process that sets up logging and runs
        # the server, given its end of the pair as uvicorn would give it a listening socket.
        cpu = None if self.cpus is None else self.cpus[index]
        target = functools.partial(_worker, self.config, os.getpid(), cpu)
        child = get_subprocess(self.config, target, [self.pairs[index][1]])
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
            if child.pid is not None:
                worker_died(child.pid)
            self.children[index] = self._spawn(index)

    def _stop_all(self) -> None:
        self.dealer.join()  # no connection is handed to a worker that is stopping
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


class _DealtServer(uvicorn.Server):
    """A uvicorn server with no listening socket of its own: it serves the connections the
    dealer passes over `pair`, with the protocol uvicorn would have given them."""

    def __init__(self, config: uvicorn.Config, pair: socket.socket):
        super().__init__(config)
        self._pair = pair
        self._opening: set[asyncio.Task[object]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        self._pair.setblocking(False)
        asyncio.get_running_loop().add_reader(self._pair.fileno(), self._receive)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self._pair.fileno())
        await super().shutdown(sockets=sockets)

    def _receive(self) -> None:
        try:
            message, fds, _flags, _address = socket.recv_fds(self._pair, 64, 64)
        except BlockingIOError:
            return
        loop = asyncio.get_running_loop()
        if not message:  # the parent is gone
            loop.remove_reader(self._pair.fileno())
            self.should_exit = True
        for fd in fds:
            connection = socket.socket(fileno=fd)
            connection.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(self._protocol, connection))
            self._opening.add(task)
            task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[object]) -> None:
        self._opening.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not serve a connection: %s", task.exception())

    def _protocol(self) -> asyncio.Protocol:
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol


def _worker(
    config: uvicorn.Config, parent: int, cpu: int | None, sockets: list[socket.socket]
) -> None:
    """A worker's main: pinned to `cpu` (before any thread starts: threads inherit it), SIGTERM
    (a graceful stop) when the supervisor dies, then serve."""
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as exc:  # e.g. the CPU was taken from this process's set since
            logger.warning("could not pin worker [%d] to CPU %d: %s", os.getpid(), cpu, exc)
    if sys.platform.startswith("linux"):  # elsewhere the pair's end of file stops it
        _PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        return
    (pair,) = sockets
    _DealtServer(config, pair).run()
