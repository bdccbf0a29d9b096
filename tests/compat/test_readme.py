"""The README's commands, run as a newcomer runs them: in order, in one shell, against a real
`backstate serve`, with the real `npx` and `npm` fetching what the README names.

The shell blocks after the first (`make run` / `make test`, which this test stands in for by
running `backstate init` and `backstate serve` itself) are split into commands and run one
after another in one bash process, from a folder that has the checkout's `.venv`, as the
repository's folder has. Only what a newcomer changes is changed: the org id, key id and secret
(`org_...`, `sbk_...`, `sbsec_...`), and the server's address, since port 8000 may be taken on
a shared machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import Api
from tests.support.server import REPO, run_server_processes

pytestmark = [pytest.mark.compat, pytest.mark.slow, pytest.mark.timeout(1200)]

README = REPO / "README.md"
README_URL = "http://127.0.0.1:8000"
FLOW_TIMEOUT_S = 1100  # the first `npx` of smply and TypeScript downloads them
_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?")


@dataclass(frozen=True)
class Step:
    """One command the README gives, and what it did."""

    command: str
    returncode: int | None  # None: never run, an earlier command failed
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ {self.command}\n-> exit {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )

    def json(self) -> Any:
        """The JSON document the command printed (after any other text)."""
        return json.loads(self.stdout[self.stdout.index("{") :])


def shell_blocks(markdown: str) -> list[str]:
    return [match[1] for match in _BLOCK.finditer(markdown)]


def commands(block: str) -> list[str]:
    """The block's commands: a line, with its `\\` continuations, its here-document, or the
    body of the function it opens; comment lines and blank lines between commands skipped."""
    found: list[str] = []
    lines: list[str] = []
    heredoc: str | None = None
    depth = 0
    for line in block.splitlines():
        if heredoc is None and not lines and (not line.strip() or line.lstrip().startswith("#")):
            continue
        lines.append(line)
        if heredoc is not None:
            heredoc = None if line == heredoc else heredoc
        else:
            opened = _HEREDOC.search(line)
            heredoc = opened[1] if opened else None
            depth += int(line.rstrip().endswith("{")) - int(line.strip() == "}")
        if heredoc is None and depth == 0 and not line.endswith("\\"):
            found.append("\n".join(lines))
            lines = []
    assert not lines, f"an unfinished command at the end of a block: {lines}"
    return found


def script(steps: list[str], logs: Path) -> str:
    """One bash script running `steps` in order, each one's output kept apart, stopping at the
    first that fails."""
    parts = []
    for index, command in enumerate(steps):
        out, err = logs / f"{index}.out", logs / f"{index}.err"
        parts.append(
            f"{{\n{command}\n}} >'{out}' 2>'{err}'\n"
            f'rc=$?; echo "{index} $rc" >>\'{logs}/exits\'; [ "$rc" = 0 ] || exit "$rc"\n'
        )
    return "".join(parts)


def run_readme(steps: list[str], folder: Path, env: dict[str, str]) -> list[Step]:
    logs = folder.parent / "logs"
    logs.mkdir()
    (logs / "exits").touch()
    subprocess.run(
        ["bash", "-c", script(steps, logs)],
        cwd=folder, env=env, timeout=FLOW_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    exits = dict(line.split() for line in (logs / "exits").read_text().splitlines())
    return [
        Step(
            command,
            int(exits[str(index)]) if str(index) in exits else None,
            _read(logs / f"{index}.out"),
            _read(logs / f"{index}.err"),
        )
        for index, command in enumerate(steps)
    ]


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def newcomer_env(home: Path) -> dict[str, str]:
    """This machine's environment with a fresh HOME (smply keeps its login there), the npm
    cache kept where it was (so that only the first run downloads), and no BACKSTATE_* setting:
    a newcomer has none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKSTATE_")}
    env.setdefault("npm_config_cache", str(Path(os.environ.get("HOME", "/root")) / ".npm"))
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Step], str, Path]]:
    """The README's flow, run once; its steps, the server's URL and the folder it ran in."""
    for tool in ("node", "npm", "npx", "bash"):
        if shutil.which(tool) is None:
            pytest.skip(f"the README's commands need {tool}")
    root = tmp_path_factory.mktemp("newcomer")
    folder, home = root / "backstate", root / "home"
    folder.mkdir()
    home.mkdir()
    (folder / ".venv").symlink_to(REPO / ".venv")
    env = newcomer_env(home)
    made = _backstate_json(folder, env, "init", "--json")  # what `make run` does first
    with run_server_processes(1, "sqlite:///" + str(folder / "backstate.db")) as (url,):
        steps = [
            _substituted(command, made, url)
            for block in shell_blocks(README.read_text())[1:]
            for command in commands(block)
        ]
        yield run_readme(steps, folder, env), url, folder


def _backstate_json(folder: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    done = subprocess.run(
        [".venv/bin/backstate", *args], cwd=folder, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    made: dict[str, str] = json.loads(done.stdout)
    return made


def _substituted(command: str, made: dict[str, str], url: str) -> str:
    for placeholder, value in [
        ("org_...", made["orgId"]),
        ("sbk_...", made["keyId"]),
        ("sbsec_...", made["secret"]),
        (README_URL, url),
    ]:
        command = command.replace(placeholder, value)
    return command


def _step(steps: list[Step], fragment: str, *, nth: int = 0, of: int = 1) -> Step:
    matching = [step for step in steps if fragment in step.command]
    assert len(matching) == of, f"the README should have {of} command(s) with {fragment!r}"
    return matching[nth]


def test_the_readme_keeps_make_run_and_make_test_first() -> None:
    first = commands(shell_blocks(README.read_text())[0])
    assert [command.split("#")[0].strip() for command in first] == ["make run", "make test"]


def test_every_readme_command_succeeds(flow: tuple[list[Step], str, Path]) -> None:
    steps, _url, _folder = flow
    assert len(steps) >= 10, [step.command for step in steps]
    for step in steps:
        assert step.returncode == 0, step.describe()


def test_the_readme_flow_ends_as_the_readme_says(flow: tuple[list[Step], str, Path]) -> None:
    steps, url, folder = flow
    made = _step(steps, "backstate init --json").json()
    deployed = _step(steps, "smply machines create").json()
    assert deployed["currentVersion"]["machineVersionId"].startswith("ver_")
    assert _step(steps, "smply instances create").json()["state"] == "off"
    assert _step(steps, "smply instances send-event", of=2).json()["state"] == "on"
    assert _step(steps, "node send.mjs").stdout.strip() == "off"
    # Versions and migrations: the second version renames "on" to "lit"; the next event upgrades
    # the instance (from "off") and toggles it on the new version.
    upgraded = _step(steps, "smply instances send-event", nth=1, of=2).json()
    assert upgraded["state"] == "lit"
    assert (folder / "toggler" / "toggler.ts").is_file()
    with Api.for_key(url, made["keyId"], made["secret"]) as admin:
        state = admin.ok("GET", "/machines/toggler/i/mine/admin")
        assert state["state"] == "lit" and "desiredMachineVersion" not in state
        history = admin.ok("GET", "/machines/toggler/i/mine/events")["transitions"]
        assert [t["event"]["type"] for t in history[-2:]] == ["statebacked.upgrade", "toggle"]
        keys = admin.ok("GET", "/keys")["keys"]
        assert "web" in [key["name"] for key in keys], "keys create made the production key"
    token = _step(steps, "backstate token").stdout.strip()
    with Api(url, token) as acting:
        assert acting.ok("GET", "/machines")["machines"][0]["slug"] == "toggler"


def test_commands_are_split_as_a_shell_reads_them() -> None:
    block = "a \\\n  b\n# note\ncat > f <<'EOF'\nx {\nEOF\nf() {\n  g\n}\nh  # done\n"
    assert commands(block) == [
        "a \\\n  b",
        "cat > f <<'EOF'\nx {\nEOF",
        "f() {\n  g\n}",
        "h  # done",
    ]
