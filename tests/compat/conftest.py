"""A real `backstate serve` process for the official npm clients, and ways to run them.

The server is set up as an operator would: `backstate init` on the database first (the admin
key), `backstate keys create` for a production key, then `backstate serve`, and
`backstate smply-login` to point smply at it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import sqlite_url
from tests.support.server import REPO, run_server_processes

COMPAT = Path(__file__).resolve().parent
NODE_MODULES = COMPAT / "node_modules"
SMPLY = NODE_MODULES / ".bin" / "smply"
BACKSTATE = [sys.executable, "-m", "api.cli"]  # the `backstate` command of this checkout
NODE_TIMEOUT_S = 60
# Small pages, so that both clients' cursor handling runs (3 instances, 3 transitions).
PAGE_SIZE = 2


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: str


@dataclass(frozen=True)
class CompatServer:
    url: str
    org_id: str
    admin: Key
    production: Key


@dataclass(frozen=True)
class Run:
    """One finished command: exit code and output."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.command)}\n-> exit {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )


def node_missing() -> str | None:
    """Why the npm clients cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not NODE_MODULES.is_dir():
        return "tests/compat/node_modules is missing: run `make setup` (npm ci in tests/compat)"
    return None


@pytest.fixture(scope="module")
def compat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompatServer]:
    reason = node_missing()
    if reason is not None:
        pytest.skip(reason)
    database_url = sqlite_url(tmp_path_factory.mktemp("compat-db"))
    made = backstate_json("init", "--json", "--database-url", database_url)
    production = backstate_json(
        "keys", "create", "--org", made["orgId"], "--name", "compat-production",
        "--use", "production", "--json", "--database-url", database_url,
    )  # fmt: skip
    with serve(database_url) as url:
        yield CompatServer(
            url=url,
            org_id=made["orgId"],
            admin=Key(made["keyId"], made["secret"]),
            production=Key(production["keyId"], production["secret"]),
        )


@pytest.fixture(scope="module")
def smply_home(compat_server: CompatServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME whose ~/.smply holds a session token signed with the admin key."""
    home = tmp_path_factory.mktemp("smply-home")
    smply_login(home, compat_server.url, compat_server.admin)
    assert (home / ".smply" / "default-org").read_text() == compat_server.org_id
    return home


@contextmanager
def serve(database_url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """One `backstate serve` process on the database (with `env` added); its URL."""
    full_env = {"BACKSTATE_PAGE_SIZE": str(PAGE_SIZE), **(env or {})}
    with run_server_processes(1, database_url, env=full_env) as urls:
        yield urls[0]


def backstate_json(*args: str) -> dict[str, Any]:
    done = run([*BACKSTATE, *args])
    assert done.returncode == 0, done.describe()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path = REPO,
) -> Run:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    done = subprocess.run(
        command,
        cwd=cwd,
        env=full_env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    return Run(command, done.returncode, done.stdout, done.stderr)


def smply_login(home: Path, url: str, admin: Key) -> None:
    """Point smply in `home` at the server at `url`, signed in with the admin key."""
    login = run(
        [*BACKSTATE, "smply-login", "--api-url", url,
         "--key-id", admin.key_id, "--secret", admin.secret],
        env={"HOME": str(home)},
    )  # fmt: skip
    assert login.returncode == 0, login.describe()


def run_node(script: str, env: dict[str, str]) -> Run:
    return run(["node", str(COMPAT / script)], env=env, cwd=COMPAT)


def run_smply(home: Path, api_url: str, *args: str, stdin: str | None = None) -> Run:
    """smply as it must run against a self-hosted server: a prepared HOME, a global
    WebSocket on Node 20, `--api-url` pointing at us."""
    env = {"HOME": str(home), "NODE_OPTIONS": "--experimental-websocket"}
    return run([str(SMPLY), "--api-url", api_url, *args], env=env, stdin=stdin, cwd=COMPAT)
