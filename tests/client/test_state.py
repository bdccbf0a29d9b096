"""State values as XState reads them: `to_strings` and `matches_state` give what XState 4.38.3
itself gives (run on Node from tests/compat/node_modules)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from backstate_client import enhance_state, matches_state, to_strings

from tests.compat.conftest import COMPAT, NODE_MODULES

VALUES: list[Any] = [
    "a", {"a": "b"}, {"a": {"b": "c"}}, {"p": {"a": "x", "b": "y"}}, {"a": {}},
    {"p": {"a": {"x": "deep"}, "b": "y"}},
]  # fmt: skip
PARENTS: list[Any] = [
    "a", "a.b", "a.b.c", "a.c", "a.b.c.d", "b", "p", "p.a", "p.a.x", "p.a.y", "idle",
    ["a"], ["a", "b"], ["a", "b", "c"], ["a", "c"], {"a": "b"}, {"a": "c"}, {"a": {"b": "c"}},
    {"p": {"a": "x"}}, {"p": {"a": "y"}}, {"p": {"a": "x", "b": "y"}}, {"x": "b"},
]  # fmt: skip

XSTATE = """
const { matchesState, State } = require("xstate");
const [values, parents] = JSON.parse(process.argv[1]);
console.log(JSON.stringify({
  strings: values.map((v) => State.from(v).toStrings()),
  matches: values.map((v) => parents.map((p) => matchesState(p, v))),
}));
"""


def xstate() -> dict[str, Any]:
    if shutil.which("node") is None or not NODE_MODULES.is_dir():
        pytest.skip("needs node and tests/compat/node_modules (make setup)")
    done = subprocess.run(
        ["node", "-e", XSTATE, json.dumps([VALUES, PARENTS])],
        cwd=COMPAT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_as_xstate_reads_state_values() -> None:
    theirs = xstate()
    assert [to_strings(value) for value in VALUES] == theirs["strings"]
    ours = [[matches_state(parent, value) for parent in PARENTS] for value in VALUES]
    assert ours == theirs["matches"]
    assert any(row.count(True) > 1 for row in ours) and any(False in row for row in ours)


def test_edges() -> None:
    assert to_strings(None) == []
    assert matches_state(None, None) and not matches_state(None, "a")
    assert matches_state("a", None)


def test_enhance_state_adds_states() -> None:
    raw = {"ts": 1, "state": {"a": "b"}, "tags": [], "done": False}
    assert enhance_state(raw) == {**raw, "states": ["a", "a.b"]}
    assert "publicContext" not in enhance_state(raw)
