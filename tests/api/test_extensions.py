"""backstate's own endpoints (api/routes/extensions.py): a version's definition, making a
version current, an instance's pending timers, and server-side bundling of one machine file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from api.services.builder import Builder, bundled_esbuild
from runtime.store.models import MachineVersion
from tests.conftest import Server
from tests.support.bundles import COUNTER, TIMER, TOGGLER
from tests.support.client import Api, assert_error

CHART = """
import { createMachine } from "npm:xstate";
export default createMachine({
  id: "door", initial: "closed", predictableActionArguments: true,
  states: {
    closed: {
      tags: ["shut"],
      on: { OPEN: { target: "opened", cond: "mayOpen" }, KNOCK: { actions: "answer" } },
      after: { 1000: "opened", SLOW: "locked" },
    },
    opened: {
      invoke: { id: "watcher", src: "watch", onDone: "closed" },
      on: { CLOSE: [{ target: "closed", cond: (ctx) => ctx.ok }, { target: "locked" }] },
      always: [{ target: "gone", cond: function isEmpty() { return false; } }],
    },
    locked: {
      type: "parallel",
      onDone: "gone",
      states: {
        bolt: { initial: "in", states: { in: { on: { SLIDE: "out" } }, out: { type: "final" },
                                          hist: { type: "history", history: "deep" } } },
        chain: { initial: "on", states: { on: { on: { "*": "on" } } } },
      },
    },
    gone: { type: "final" },
  },
}, { delays: { SLOW: 5000 }, guards: { mayOpen: () => true } });
export const allowRead = () => true;
export const allowWrite = () => true;
"""

BUILDABLE = """
import { createMachine, assign } from "xstate";
type Ctx = { count: number };
const machine = createMachine<Ctx>({
  id: "typed", initial: "idle", context: { count: 0 }, predictableActionArguments: true,
  states: { idle: { on: { bump: { actions: assign({ count: (c: Ctx) => c.count + 1 }) } } } },
});
export default machine;
export const allowRead = () => true;
export const allowWrite = () => true;
"""


def node(definition: dict[str, Any], *path: str) -> dict[str, Any]:
    found = definition["root"]
    for key in path:
        found = next(child for child in found["states"] if child["key"] == key)
    return found


def definition_of(api: Api, machine: str, version: str) -> dict[str, Any]:
    body = api.ok("GET", f"/machines/{machine}/v/{version}/definition")
    assert body["machineVersionId"] == version
    definition: dict[str, Any] = body["definition"]
    return definition


# --- definitions ------------------------------------------------------------------------


def test_the_definition_is_read_from_the_machine_at_finalize(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "door"})
    version = api.upload_version("door", CHART)
    definition = definition_of(api, "door", version)
    assert definition["format"] == 1
    root = definition["root"]
    assert (root["id"], root["type"], root["initial"]) == ("door", "compound", "closed")
    assert [s["key"] for s in root["states"]] == ["closed", "opened", "locked", "gone"]

    closed = node(definition, "closed")
    assert closed["tags"] == ["shut"]
    on = {(t["event"], t["kind"]): t for t in closed["on"]}
    assert on["OPEN", "event"]["targets"] == ["door.opened"]
    assert on["OPEN", "event"]["guard"] == "mayOpen"
    assert on["KNOCK", "event"]["targets"] == [] and on["KNOCK", "event"]["actions"] == ["answer"]
    delays = sorted(
        (str(t["delay"]), t["targets"]) for t in closed["on"] if t["kind"] == "after"
    )
    assert delays == [("1000", ["door.opened"]), ("SLOW", ["door.locked"])]
    assert closed["entry"] == [] and closed["exit"] == []  # xstate's own timer actions are hidden

    opened = node(definition, "opened")
    assert opened["invoke"] == [{"id": "watcher", "src": "watch"}]
    kinds = [(t["kind"], t["event"], t.get("guard")) for t in opened["on"]]
    assert ("done", "done.invoke.watcher", None) in kinds
    assert ("event", "CLOSE", "") in kinds  # an unnamed inline guard
    assert ("always", "", "isEmpty") in kinds

    locked = node(definition, "locked")
    assert locked["type"] == "parallel"
    assert [t["kind"] for t in locked["on"]] == ["done"]
    assert node(definition, "locked", "bolt", "out")["type"] == "final"
    assert node(definition, "locked", "bolt", "hist")["history"] == "deep"
    assert node(definition, "locked", "chain", "on")["on"][0]["kind"] == "wildcard"
    assert node(definition, "gone")["type"] == "final"


def test_a_version_finalized_without_a_definition_gets_it_extracted_once(
    server: Server, api: Api
) -> None:
    api.ok("POST", "/machines", {"slug": "t"})
    version = api.upload_version("t", TOGGLER)
    with server.services.db.transaction() as session:
        session.execute(update(MachineVersion).values(definition=None))
    definition = definition_of(api, "t", version)
    assert [s["key"] for s in definition["root"]["states"]] == ["off", "on"]
    with server.services.db.transaction() as session:
        stored = session.get(MachineVersion, _uuid(version))
        assert stored is not None and stored.definition == definition


def test_definition_errors_and_scopes(server: Server, api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "t"})
    version = api.upload_version("t", TOGGLER)
    assert_error(api.request("GET", "/machines/t/v/ver_nope/definition"), 404)
    assert_error(api.request("GET", f"/machines/other/v/{version}/definition"), 404)
    api.ok("POST", "/machines", {"slug": "u"})
    assert_error(api.request("GET", f"/machines/u/v/{version}/definition"), 404)
    made = api.ok("POST", "/keys", {"name": "p", "use": "production"})
    with Api.for_key(server.url, made["id"], made["key"]) as production:
        denied = production.request("GET", f"/machines/t/v/{version}/definition")
        assert_error(denied, 403, "missing-scope")
    made = api.ok("POST", "/keys", {"name": "c", "use": "ci"})
    with Api.for_key(server.url, made["id"], made["key"]) as ci:
        assert definition_of(ci, "t", version)["root"]["id"] == "toggler"


# --- the current version ------------------------------------------------------------------


def test_any_finalized_version_can_be_made_current(server: Server, api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    first = api.upload_version("m", TOGGLER)
    second = api.upload_version("m", COUNTER)
    assert api.ok("GET", "/machines/m")["machine"]["currentVersion"]["id"] == second
    assert api.ok("PUT", "/machines/m/current-version", {"machineVersionId": first}) is None
    assert api.ok("GET", "/machines/m")["machine"]["currentVersion"]["id"] == first
    assert api.create_instance("m", "i")["state"] == "off"  # new instances start in it

    made = api.ok("POST", "/machines/m/v")  # provisional: never current
    provisional = made["machineVersionId"].partition(".")[0]
    refused = api.request("PUT", "/machines/m/current-version", {"machineVersionId": provisional})
    assert_error(refused, 404)
    api.ok("POST", "/machines", {"slug": "other"})
    foreign = api.request("PUT", "/machines/other/current-version", {"machineVersionId": first})
    assert_error(foreign, 404)
    assert_error(api.request("PUT", "/machines/m/current-version", {}), 400)
    assert api.ok("GET", "/machines/m")["machine"]["currentVersion"]["id"] == first

    made = api.ok("POST", "/keys", {"name": "p", "use": "production"})
    with Api.for_key(server.url, made["id"], made["key"]) as production:
        body = {"machineVersionId": second}
        denied = production.request("PUT", "/machines/m/current-version", body)
        assert_error(denied, 403, "missing-scope")


# --- timers -------------------------------------------------------------------------------


def test_pending_timers_are_listed_for_admin_keys(server: Server, api: Api) -> None:
    api.create_machine("timer", TIMER)
    api.create_instance("timer", "i")
    assert api.ok("GET", "/machines/timer/i/i/timers") == {"timers": []}
    before = datetime.now().astimezone()
    assert api.send("timer", "i", "start").status_code == 200
    (timer,) = api.ok("GET", "/machines/timer/i/i/timers")["timers"]
    assert timer["id"] == "xstate.after(60000)#timer.waiting"
    assert timer["event"]["type"] == "xstate.after(60000)#timer.waiting"
    assert timer["attempts"] == 0
    due = datetime.fromisoformat(timer["dueAt"])
    after = datetime.now().astimezone()
    assert before + timedelta(seconds=59) < due < after + timedelta(seconds=61)
    assert api.send("timer", "i", "stop").status_code == 200
    assert api.ok("GET", "/machines/timer/i/i/timers") == {"timers": []}

    assert_error(api.request("GET", "/machines/timer/i/nope/timers"), 404)
    made = api.ok("POST", "/keys", {"name": "c", "use": "ci"})
    with Api.for_key(server.url, made["id"], made["key"]) as ci:
        assert_error(ci.request("GET", "/machines/timer/i/i/timers"), 403, "missing-scope")


# --- bundling -----------------------------------------------------------------------------


def test_a_single_file_machine_is_bundled_like_smply_and_deploys(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "typed"})
    built = api.ok("POST", "/machines/typed/bundle", {"source": BUILDABLE, "fileName": "m.ts"})
    code = built["code"]
    assert "xstate\"" not in code  # inlined (smply 0.1.18 builds), not imported
    assert '"createMachine"' in code  # keepNames keeps xstate's function names
    assert len(code.splitlines()) <= 3 and "type Ctx" not in code  # minified, types stripped
    api.upload_version("typed", code)
    api.create_instance("typed", "i")
    assert api.send("typed", "i", "bump").status_code == 200
    assert api.ok("GET", "/machines/typed/i/i/admin")["context"] == {"count": 1}


def test_npm_xstate_stays_an_import_the_sandbox_resolves(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "t"})
    source = TOGGLER.replace('"xstate"', '"npm:xstate"')
    built = api.ok("POST", "/machines/t/bundle", {"source": source})
    assert 'from"npm:xstate"' in built["code"].replace(" ", "")
    api.upload_version("t", built["code"])
    assert api.create_instance("t", "i")["state"] == "off"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("export default {", "Expected identifier but found end of file (machine.ts:1:16)"),
        ('import x from "./other";\nexport default x;', "imports './other'"),
        ('import secret from "/etc/hostname.txt";\nexport default secret;', "'/etc/hostname.txt'"),
        ('const fs = require("fs");\nexport default fs;', "imports 'fs'"),
    ],
)
def test_code_that_does_not_build_is_refused_in_words(api: Api, source: str, words: str) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    body = assert_error(api.request("POST", "/machines/m/bundle", {"source": source}), 400)
    assert body["code"] == "invalid-bundle" and body["parameter"] == "source"
    assert words in body["error"], body


def test_bundling_needs_the_scope_and_the_machine(server: Server, api: Api) -> None:
    assert_error(api.request("POST", "/machines/nope/bundle", {"source": TOGGLER}), 404)
    api.ok("POST", "/machines", {"slug": "m"})
    assert_error(api.request("POST", "/machines/m/bundle", {"source": ""}), 400)
    made = api.ok("POST", "/keys", {"name": "p", "use": "production"})
    with Api.for_key(server.url, made["id"], made["key"]) as production:
        denied = production.request("POST", "/machines/m/bundle", {"source": TOGGLER})
        assert_error(denied, 403, "missing-scope")


def test_a_server_without_esbuild_says_so(tmp_path: Path) -> None:
    from runtime.errors import UnsupportedError

    with pytest.raises(UnsupportedError) as raised:
        Builder(tmp_path / "esbuild").build(TOGGLER, "m.ts")
    assert raised.value.code == "not-implemented"
    assert "make setup" in raised.value.message
    assert bundled_esbuild().is_file()  # `make setup` installed the real one


def _uuid(pretty: str) -> Any:
    from api import ids

    return ids.decode("ver", pretty)
