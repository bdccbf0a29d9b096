"""Where the server's CPU goes during a measurement: py-spy samples every process below this
one (the server and its workers) for the length of a `with` block, and `summary` folds the
samples into the share of CPU each function took, inclusive and self.

    with Profile(Path("out/events")) as profile:
        ...   # the load
    print(profile.summary())

py-spy samples without pausing the server (`--nonblocking`, so the figures measured meanwhile
stay close to an unprofiled run's), and only threads holding the GIL (`--gil`): a thread waiting
for the GIL, or in a C call that released it (a commit's sync, SQLite's own work), would
otherwise count as busy in its Python caller. The figures are therefore the Python side's share
of each process's GIL, which is what one worker process can spend; the event loop's share shows
as uvicorn's `asyncio_run` (uvloop and httptools run in C under it). Stacks that end in a wait
(`_WAITS`) are dropped. py-spy must be installed (`pip install
py-spy`); it needs the right to trace the processes (root, or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from bench.machine import descendants

# Leaves of threads that wait rather than work.
_WAITS = re.compile(r"^(Condition\.wait|Event\.wait|socket\.accept|_PollLikeSelector\.select|"
                    r"EpollSelector\.select|Queue\.get|_Ticker\._run|main \(multiprocessing/"
                    r"resource_tracker|sleep \(|_wait_for_tstate_lock)")
# Frames that say where a thread is, not what it does.
_PLUMBING = re.compile(r"^(Thread\.|_bootstrap|_worker \(concurrent|_WorkItem\.run|<module>|"
                       r"spawn_main|_main \(multiprocessing|BaseProcess\.|Runner\.run|run \(|"
                       r"process \d+:)")


class Profile:
    def __init__(self, out: Path, *, rate: int = 200):
        self.out, self.rate = out, rate
        self._samplers: list[subprocess.Popen[bytes]] = []
        self.files: list[Path] = []

    def __enter__(self) -> Profile:
        spy = shutil.which("py-spy") or shutil.which("py-spy", path=Path(sys.executable).parent)
        if spy is None:
            raise SystemExit("--profile needs py-spy: pip install py-spy")
        self.out.mkdir(parents=True, exist_ok=True)
        for pid in descendants():
            path = self.out / f"{pid}.txt"
            self.files.append(path)
            self._samplers.append(subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(self.rate),
                 "--nonblocking", "--gil", "--output", str(path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None
                 ) -> None:
        for sampler in self._samplers:
            sampler.send_signal(signal.SIGINT)   # py-spy writes its output on SIGINT
        for sampler in self._samplers:
            sampler.wait(timeout=60)

    def summary(self, top: int = 25) -> str:
        inclusive, own, total = _fold(p for p in self.files if p.exists())
        if not total:
            return "profile: no samples (was the server idle, or py-spy refused?)"
        lines = [f"profile: {total} samples of the server's threads holding the GIL "
                 f"(raw stacks in {self.out})", "  inclusive:"]
        lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
        lines.append("  self:")
        lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
        return "\n".join(lines)


def _fold(paths: collections.abc.Iterable[Path]) -> tuple[collections.Counter[str],
                                                          collections.Counter[str], int]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [_frame(f) for f in stack.split(";") if not _PLUMBING.match(f)]
            if frames and _WAITS.match(frames[-1]):
                continue
            total += int(count)
            for name in dict.fromkeys(frames):
                inclusive[name] += int(count)
            if frames:
                own[frames[-1]] += int(count)
    return inclusive, own, total


def _frame(raw: str) -> str:
    """`func (path/to/file.py:123)` without the line, and the path from the package down."""
    name = re.sub(r":\d+\)$", ")", raw)
    return re.sub(r"\((?:.*/site-packages/|.*/(?=(?:runtime|api)/))", "(", name)
