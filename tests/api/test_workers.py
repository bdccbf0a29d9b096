"""`backstate serve --workers 2`: connections dealt to the worker processes in turn
(api/workers.py).

Which worker holds a connection is read from /proc: the server side of each established
connection to the port is a socket inode, found among the file descriptors of one worker."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import httpx
import pytest

from api.workers import worker_cpus
from tests.conftest import TEST_SECRET
from tests.support.server import REPO, free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")

CONNECTIONS = 16
ESTABLISHED = "01"


@contextmanager
def serve_two_workers(
    database_url: str, *, cpus: list[int] | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`backstate serve --workers 2`, allowed only `cpus` (all when None)."""
    port = free_port()
    command = [sys.executable, "-m", "api.cli", "serve", "--workers", "2", "--port", str(port)]
    command += ["--database-url", database_url, "--log-level", "warning"]
    if cpus is not None:
        command = ["taskset", "--cpu-list", ",".join(map(str, cpus)), *command]
    env = {**os.environ, "PYTHONPATH": str(REPO), "BACKSTATE_SECRET": TEST_SECRET, **(env or {})}
    process = subprocess.Popen(command, cwd=REPO, env=env)
    try:
        wait_until(lambda: healthy(port), f"backstate serve on {port} answering", process)
        wait_until(lambda: len(workers(process.pid)) == 2, "two workers", process)
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(
    done: Callable[[], bool],
    what: str,
    process: subprocess.Popen[bytes] | None,
    timeout: float = 60,
) -> None:
    """Poll `done` until it holds; fail if `process` (when given) exits first."""
    deadline = time.monotonic() + timeout
    while not done():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"backstate serve exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def workers(pid: int) -> list[int]:
    """The live worker processes of the server `pid` (not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = read(Path(f"/proc/{child}/cmdline"))
            if "spawn_main" in cmdline and alive(int(child)):
                found.append(int(child))
    return sorted(found)


def cpus_of(pid: int) -> set[int]:
    """The CPUs every thread of `pid` may run on (they must agree)."""
    masks = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in read(task / "status").splitlines():
            if line.startswith("Cpus_allowed_list:"):
                masks.add(line.split(":", 1)[1].strip())
    assert len(masks) == 1, f"threads of {pid} disagree: {masks}"
    cpus = set()
    for part in masks.pop().split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # the process has gone
        return ""


def alive(pid: int) -> bool:
    status = read(Path(f"/proc/{pid}/status"))
    return bool(status) and "State:\tZ" not in status


def connections_per_worker(server_pid: int, port: int) -> dict[int, int]:
    """How many established connections to `port` each worker holds."""
    inodes = server_side_inodes(port)
    counts = {}
    for pid in workers(server_pid):
        fds = Path(f"/proc/{pid}/fd")
        links = {os.readlink(fd) for fd in fds.iterdir()}
        counts[pid] = sum(f"socket:[{inode}]" in links for inode in inodes)
    return counts


def server_side_inodes(port: int) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == ESTABLISHED:
            inodes.add(fields[9])
    return inodes


def open_keep_alive_connections(stack: ExitStack, port: int) -> None:
    """CONNECTIONS connections opened together, each then answering one request (so a worker
    has accepted it) and left open."""
    connections = [
        stack.enter_context(closing(http.client.HTTPConnection("127.0.0.1", port, timeout=30)))
        for _ in range(CONNECTIONS)
    ]
    for connection in connections:
        connection.connect()
    for connection in connections:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        response.read()


def assert_spread(server_pid: int, port: int) -> None:
    with ExitStack() as stack:
        open_keep_alive_connections(stack, port)
        counts = connections_per_worker(server_pid, port)
    assert sorted(counts.values()) == [CONNECTIONS // 2, CONNECTIONS // 2], counts


@pytest.mark.slow
def test_keep_alive_connections_opened_together_are_dealt_evenly_to_the_workers(
    database_url: str,
) -> None:
    with serve_two_workers(database_url) as (process, port):
        assert_spread(process.pid, port)


@pytest.mark.slow
def test_sigterm_stops_the_workers_and_exits_0(database_url: str) -> None:
    with serve_two_workers(database_url) as (process, _):
        children = workers(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert not any(alive(pid) for pid in children)


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_takes_its_turns(database_url: str) -> None:
    with serve_two_workers(database_url) as (process, port):
        killed, kept = workers(process.pid)
        os.kill(killed, signal.SIGKILL)

        def replaced() -> bool:
            now = workers(process.pid)
            return len(now) == 2 and killed not in now

        wait_until(replaced, "a new worker", process)
        assert kept in workers(process.pid)
        # connections dealt to the killed worker meanwhile wait for the new one
        for _ in range(4):
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200
        # which takes the turns of the one it replaced
        assert_spread(process.pid, port)


@pytest.mark.slow
def test_workers_stop_when_their_supervisor_is_killed(database_url: str) -> None:
    with serve_two_workers(database_url) as (process, _):
        children = workers(process.pid)
        process.kill()
        process.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in children), "the workers to stop", None, 30)


ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@pytest.mark.slow
@pytest.mark.skipif(len(ALLOWED) < 2 or shutil.which("taskset") is None,
                    reason="needs two CPUs and taskset")
@pytest.mark.parametrize("pin", [True, False], ids=["pinned", "not-pinned"])
def test_with_a_worker_per_cpu_each_worker_and_its_replacement_keep_to_one_cpu(
    database_url: str, pin: bool
) -> None:
    two = ALLOWED[:2]
    settings = {"BACKSTATE_PIN_WORKERS": "true" if pin else "false"}
    with serve_two_workers(database_url, cpus=two, env=settings) as (process, _):
        children = workers(process.pid)
        # Each worker is pinned (or not) before its first thread starts.
        wait_until(lambda: all(map(has_started_threads, children)), "the workers' threads",
                   process)
        cpus = {pid: cpus_of(pid) for pid in children}
        if pin:
            assert sorted(cpus.values(), key=min) == [{two[0]}, {two[1]}]
        else:
            assert list(cpus.values()) == [set(two), set(two)]
        killed = children[0]
        os.kill(killed, signal.SIGKILL)
        new: set[int] = set()

        def replaced() -> bool:
            new.update(set(workers(process.pid)) - set(children))
            return bool(new)

        wait_until(replaced, "a new worker", process)
        (replacement,) = new
        wait_until(lambda: has_started_threads(replacement), "the new worker's threads", process)
        assert cpus_of(replacement) == cpus[killed]


def has_started_threads(pid: int) -> bool:
    """The worker has started its app (its threads exist: the epoch ticker, the pools)."""
    return len(list(Path(f"/proc/{pid}/task").iterdir())) > 1


@pytest.mark.parametrize(
    ("allowed", "count", "pinned"),
    [
        ({0, 1, 2, 3}, 4, [0, 1, 2, 3]),
        ({0, 1, 2, 3}, 8, [0, 1, 2, 3, 0, 1, 2, 3]),
        ({2, 5}, 2, [2, 5]),  # the CPUs this process may use, not 0..n-1
        ({0, 1, 2, 3}, 2, None),  # fewer workers than CPUs: each may use a second core
        ({0, 1, 2, 3}, 6, None),  # two CPUs would serve two workers, two only one
        ({0}, 3, None),  # one CPU: nothing to choose
    ],
)
def test_workers_are_pinned_only_when_they_divide_evenly_among_the_cpus(
    monkeypatch: pytest.MonkeyPatch, allowed: set[int], count: int, pinned: list[int] | None
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: allowed)
    assert worker_cpus(count) == pinned
