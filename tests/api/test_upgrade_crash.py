"""Crash safety of upgrades: a real `backstate serve` process is killed with SIGKILL while an
upgrade is under way, then a new process is started on the same database. No instance is ever
half upgraded: its version, its desired version, its state and its transition history agree.

* killed while the migration runs (before the upgrade's commit): the instance is exactly as
  before, desired version still set, and the next event upgrades it;
* killed after the upgrade's commit, while the event's service waits on a fetch on the new
  version: the instance is upgraded (version switched with the upgrade's transition, desired
  version cleared), and the cut-off service gets its error.platform before the next event.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_crash import admin, hanging_url, start  # noqa: F401 (fixture)
from tests.support.client import Api
from tests.support.migrations import migration

pytestmark = pytest.mark.slow

V1 = """
import { createMachine, assign } from "npm:xstate";
export default createMachine({
  id: "crashy", predictableActionArguments: true, initial: "idle", context: { n: 0 },
  states: {
    idle: { on: { bump: { actions: assign({ n: (c) => c.n + 1 }) }, go: "busy" } },
    busy: { on: { back: "idle" } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""

V2 = V1.replace('busy: { on: { back: "idle" } },', """busy: {
      invoke: { src: () => fetch(HANG_URL).then((r) => r.text()), onDone: "idle",
                onError: "failed" },
    },
    failed: { on: { poke: "idle" } },""")

FAST = migration("(path) => path", "(o, n, context) => ({ ...context, upgraded: true })")
# Busy for 8 s of wall-clock time (well under the 10 s slice limit): the kill lands inside it.
SLOW = migration(
    "(path) => { const end = Date.now() + 8000; while (Date.now() < end) {} return path; }",
    "(o, n, context) => ({ ...context, upgraded: true })",
)


def history(api: Api) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.ok("GET", "/machines/crashy/i/i/events" + (f"?cursor={cursor}" if cursor
                                                               else ""))
        out += page["transitions"]
        if not page.get("cursor"):
            return out
        cursor = page["cursor"]


def send_in_background(url: str, key_id: str, secret: str, event: str) -> threading.Thread:
    def send() -> None:
        try:
            with Api.for_key(url, key_id, secret) as api:
                api.send("crashy", "i", event)
        except Exception:
            pass   # the server is killed under it

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def assert_consistent(api: Api, v1: str, v2: str) -> bool:
    """The instance's version, desired version and history agree; whether it was upgraded."""
    admin_view = api.ok("GET", "/machines/crashy/i/i/admin")
    upgrades = [t for t in history(api) if t["event"]["type"] == "statebacked.upgrade"]
    assert len(upgrades) <= 1
    upgraded = bool(upgrades)
    assert admin_view["machineVersion"]["id"] == (v2 if upgraded else v1)
    assert ("desiredMachineVersion" in admin_view) is not upgraded
    assert ("upgraded" in admin_view["context"]) is upgraded
    return upgraded


def test_sigkill_during_an_upgrade_leaves_no_half_upgraded_instance(tmp_path: Path,
                                                                   hanging_url: str) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    keys = admin(db)
    process, url = start(db)
    api = Api.for_key(url, keys.key_id, keys.secret)
    try:
        v1 = api.create_machine("crashy", V1)
        v2 = api.upload_version("crashy", V2.replace("HANG_URL", repr(hanging_url)),
                                make_current=False)
        api.upload_migration("crashy", v1, v2, SLOW)
        api.create_instance("crashy", "i")
        assert api.send("crashy", "i", "bump").status_code == 200
        before = history(api)
        assert api.set_desired_version("crashy", "i", v2).status_code == 201

        # 1. killed while the migration runs
        sender = send_in_background(url, keys.key_id, keys.secret, "go")
        time.sleep(1.5)
        assert sender.is_alive(), "the event was answered before the kill"
        process.send_signal(signal.SIGKILL)
        process.wait()
        api.close()

        process, url = start(db)
        api = Api.for_key(url, keys.key_id, keys.secret)
        assert not assert_consistent(api, v1, v2)
        assert history(api) == before
        assert api.ok("GET", "/machines/crashy/i/i/admin")["state"] == "idle"

        # 2. killed after the upgrade committed, the event's fetch pending on v2
        api.upload_migration("crashy", v1, v2, FAST)   # the newest migration counts
        sender = send_in_background(url, keys.key_id, keys.secret, "go")
        deadline = time.monotonic() + 30
        while [t["event"]["type"] for t in history(api)][-1:] != ["go"]:
            assert time.monotonic() < deadline, "the upgrade and the event never committed"
            time.sleep(0.05)
        assert sender.is_alive(), "the fetch should still be pending"
        process.send_signal(signal.SIGKILL)
        process.wait()
        api.close()

        process, url = start(db)
        api = Api.for_key(url, keys.key_id, keys.secret)
        assert assert_consistent(api, v1, v2)
        tail = [t["event"]["type"] for t in history(api)][len(before):]
        assert tail == ["statebacked.upgrade", "go"]
        assert api.send("crashy", "i", "poke").status_code == 200
        tail = [t["event"]["type"] for t in history(api)][len(before) + 2:]
        assert tail[0].startswith("error.platform.crashy.busy") and tail[1] == "poke"
        assert api.ok("GET", "/machines/crashy/i/i/admin")["state"] == "idle"
    finally:
        api.close()
        process.terminate()
        process.wait(20)
