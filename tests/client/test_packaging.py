"""The client is a package of its own: its wheel holds `backstate_client` (typed) and nothing
else, so installing it claims no top-level names such as `api` or `runtime`, and it needs only
httpx, websockets and PyJWT."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.server import REPO

CLIENT = REPO / "clients" / "python"


def test_installed_distribution() -> None:
    dist = importlib.metadata.distribution("backstate-client")
    assert (dist.read_text("top_level.txt") or "").split() == ["backstate_client"]
    names = sorted(req.split(">")[0].split("=")[0].lower() for req in dist.requires or [])
    assert names == ["httpx", "pyjwt", "websockets"]


@pytest.mark.slow
def test_the_wheel_holds_only_backstate_client(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes build/ next to the sources
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("backstate_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "backstate_client", f"{wheel.name.split('-py3')[0]}.dist-info",
    }  # fmt: skip
    assert "backstate_client/py.typed" in names
    assert "backstate_client/__init__.py" in names
