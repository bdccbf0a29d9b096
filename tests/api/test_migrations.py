"""Migrations and desired versions over HTTP: the upload flow, `PUT .../v`, and upgrades applied
by the next settled event (client events and timers), including the ways they fail."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from api import ids
from api.app import build_runtime, create_app
from api.bootstrap import init
from api.settings import Settings
from runtime.clock import SystemClock
from runtime.engine import Runtime
from runtime.errors import InstanceChangedError
from runtime.store import upgrades as upgrade_rows
from runtime.store.models import Instance, Timer, VersionMigration
from tests.conftest import Server
from tests.support.bundles import COUNTER, TOGGLER
from tests.support.client import Api, assert_error, upload
from tests.support.migrations import (
    STUDIO_V1,
    STUDIO_V2,
    STUDIO_V3,
    V1_TO_V2,
    V2_TO_V1,
    V2_TO_V3,
    migration,
)
from tests.support.server import run_server

IDENTITY = migration("(path) => path")
PAUSE_TIMER = "xstate.after(3600000)#studio.pause"


def studio(api: Api) -> tuple[str, str, str]:
    """The studio machine with its three versions (v1 current)."""
    v1 = api.create_machine("studio", STUDIO_V1)
    v2 = api.upload_version("studio", STUDIO_V2, make_current=False, client_info="v2")
    v3 = api.upload_version("studio", STUDIO_V3, make_current=False, client_info="v3")
    return v1, v2, v3


def paused(api: Api, slug: str = "i") -> None:
    """A v1 instance paused, its history remembering left live and right loud.hot."""
    api.create_instance("studio", slug)
    for event in ["LEFT", "RIGHT", "HEAT", "BREAK"]:
        assert api.send("studio", slug, event).status_code == 200


def transitions(api: Api, slug: str, machine: str = "studio") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.ok("GET", f"/machines/{machine}/i/{slug}/events" + (f"?cursor={cursor}"
                                                                         if cursor else ""))
        out += page["transitions"]
        if not page.get("cursor"):
            return out
        cursor = page["cursor"]


def raw(pretty: str) -> str:
    prefix = pretty.split("_", 1)[0]
    decoded = ids.decode(prefix, pretty)  # type: ignore[arg-type]
    assert decoded is not None
    return str(decoded)


# --- the upload flow -----------------------------------------------------------------------


def test_migration_upload_matches_the_client_flow(server: Server, api: Api) -> None:
    v1, v2, _ = studio(api)
    body = {"fromMachineVersionId": v1, "toMachineVersionId": v2, "extra": [1, 2],
            "gzippedCode": {str(n): 7 for n in range(100)}}
    made = api.ok("POST", "/machines/studio/migrations?gzip", body)
    assert set(made) == {"machineVersionMigrationId", "codeUploadUrl", "codeUploadFields"}
    assert made["codeUploadUrl"].startswith(server.url + "/")
    assert not set("/?#%") & set(made["machineVersionMigrationId"])
    file_name = f"studio_{v1}_to_{v2}.js"
    assert upload(made, V1_TO_V2.encode(), gzipped=False, file_name=file_name).status_code == 204
    signed = made["machineVersionMigrationId"]
    response = api.request("PUT", f"/machines/studio/migrations/{signed}")
    assert response.status_code == 200, response.text
    assert response.json()["machineVersionMigrationId"].startswith("mig_")
    # both spellings of the client's body, gzip and plain
    assert api.upload_migration("studio", v2, v1, V2_TO_V1, gzipped=True).startswith("mig_")
    assert api.upload_migration("studio", v1, v2, V1_TO_V2, gzipped=False).startswith("mig_")


def test_a_migration_body_of_megabytes_is_accepted(server: Server, api: Api) -> None:
    v1, v2, _ = studio(api)
    # what the client sends for a 1 MB gzip bundle: some 12 MB of JSON
    code = {str(n): 255 for n in range(1_000_000)}
    body = {"fromMachineVersionId": v1, "toMachineVersionId": v2, "gzippedCode": code}
    made = api.ok("POST", "/machines/studio/migrations?gzip", body)
    assert made["machineVersionMigrationId"].startswith("mig_")
    limit = server.settings.max_migration_body_bytes
    too_big = api.request("POST", "/machines/studio/migrations",
                          content=b"{" + b" " * limit + b"}")
    assert_error(too_big, 413, "payload-too-large")
    other = api.request("POST", "/machines/studio", content=b" " * (server.settings.max_body_bytes
                                                                     + 1))
    assert_error(other, 413, "payload-too-large")  # the other routes keep their limit


def test_provisional_migrations_check_their_versions(api: Api) -> None:
    v1, v2, _ = studio(api)
    other = api.create_machine("other", TOGGLER)

    def create(body: Any, machine: str = "studio") -> Any:
        return api.request("POST", f"/machines/{machine}/migrations", body)

    assert_error(create({"fromMachineVersionId": v1}), 400, "invalid-parameter")
    assert_error(create({"fromMachineVersionId": v1, "toMachineVersionId": v1}), 400)
    assert_error(create({"fromMachineVersionId": v1, "toMachineVersionId": other}), 404)
    assert_error(create({"fromMachineVersionId": "ver_nope", "toMachineVersionId": v2}), 404)
    assert_error(create({"fromMachineVersionId": v1, "toMachineVersionId": v2}, "nope"), 404)
    assert_error(api.request("POST", "/machines/studio/migrations", content=b"{not json"), 400)
    provisional_version = api.ok("POST", "/machines/studio/v")["machineVersionId"].split(".")[0]
    assert_error(create({"fromMachineVersionId": v1, "toMachineVersionId": provisional_version}),
                 404)


def test_finalize_loads_the_migration_in_the_sandbox(api: Api) -> None:
    v1, v2, _ = studio(api)
    bad = {
        "export const upgradeState = (p) => p;": "upgradeContext",
        "export const upgradeState = 1, upgradeContext = () => ({});": "upgradeState",
        "export const upgradeState = (p) => p, upgradeContext = (": "not a valid ES module",
        "import z from 'zod';\n" + IDENTITY: "zod",
        "while (true) {}\n" + IDENTITY: "evaluating",
    }
    for source, message in bad.items():
        made = api.ok("POST", "/machines/studio/migrations",
                      {"fromMachineVersionId": v1, "toMachineVersionId": v2})
        assert upload(made, source.encode(), gzipped=False).status_code == 204
        finalize = api.request("PUT",
                               f"/machines/studio/migrations/{made['machineVersionMigrationId']}")
        assert message in assert_error(finalize, 400, "invalid-bundle")["error"]
    made = api.ok("POST", "/machines/studio/migrations",
                  {"fromMachineVersionId": v1, "toMachineVersionId": v2})
    signed = made["machineVersionMigrationId"]
    assert_error(api.request("PUT", f"/machines/studio/migrations/{signed}"), 400)  # no code
    assert upload(made, IDENTITY.encode(), gzipped=False).status_code == 204
    pretty = signed.split(".")[0]
    for tampered in [pretty, f"{pretty}.AAAAAAAAAAAAAAAAAAAAAA", "mig_nope", v1]:
        assert_error(api.request("PUT", f"/machines/studio/migrations/{tampered}"), 404)
    api.create_machine("other", TOGGLER)
    assert_error(api.request("PUT", f"/machines/other/migrations/{signed}"), 404)
    # none of these is a migration: no path exists
    api.create_instance("studio", "i")
    assert_error(api.set_desired_version("studio", "i", v2), 400, "no-migration-path")


def test_migrations_need_the_machine_versions_write_scope(server: Server, api: Api) -> None:
    v1, v2, _ = studio(api)
    made = api.ok("POST", "/keys", {"name": "prod", "use": "production"})
    with Api.for_key(server.url, made["id"], made["key"]) as production:
        denied = production.request("POST", "/machines/studio/migrations",
                                     {"fromMachineVersionId": v1, "toMachineVersionId": v2})
        assert_error(denied, 403, "missing-scope")


# --- the desired version ---------------------------------------------------------------------


def test_desired_version_needs_a_path_and_shows_until_applied(api: Api) -> None:
    v1, v2, v3 = studio(api)
    paused(api)
    assert_error(api.set_desired_version("studio", "i", v2), 400, "no-migration-path")
    assert_error(api.set_desired_version("studio", "i", "ver_nope"), 404)
    assert_error(api.set_desired_version("nope", "i", v2), 404)
    assert_error(api.set_desired_version("studio", "nobody", v2), 404)
    api.upload_migration("studio", v1, v2, V1_TO_V2)
    assert_error(api.set_desired_version("studio", "i", v3), 400, "no-migration-path")
    assert api.ok("PUT", "/machines/studio/i/i/v", {"targetMachineVersionId": v2}) is None  # 201
    admin = api.ok("GET", "/machines/studio/i/i/admin")
    assert admin["machineVersion"]["id"] == v1
    assert admin["desiredMachineVersion"]["id"] == v2
    assert admin["desiredMachineVersion"]["clientInfo"] == "v2"
    # naming the version it runs cancels the upgrade
    assert api.set_desired_version("studio", "i", v1).status_code == 201
    assert "desiredMachineVersion" not in api.ok("GET", "/machines/studio/i/i/admin")
    assert api.send("studio", "i", "RESUME").status_code == 200
    assert api.ok("GET", "/machines/studio/i/i/admin")["machineVersion"]["id"] == v1


def test_two_migrations_in_one_upgrade_then_the_event_on_the_new_version(api: Api) -> None:
    v1, v2, v3 = studio(api)
    m12 = api.upload_migration("studio", v1, v2, V1_TO_V2)
    m23 = api.upload_migration("studio", v2, v3, V2_TO_V3)
    api.upload_migration("studio", v2, v1, V2_TO_V1)  # a way back, not taken
    paused(api)
    before = transitions(api, "i")
    assert api.set_desired_version("studio", "i", v3).status_code == 201
    assert transitions(api, "i") == before, "setting the desired version upgrades nothing"
    resumed = api.send("studio", "i", "RESUME")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == {
        "session": {"mix": {"vocals": "live", "right": {"loud": "blazing"}, "drums": "silent"}}}
    history = transitions(api, "i")
    assert history[: len(before)] == before
    upgrade_step, event_step = history[len(before):]
    assert upgrade_step["event"] == {
        "type": "statebacked.upgrade", "migrationPath": [raw(m12), raw(m23)],
        "fromMachineVersionId": raw(v1), "toMachineVersionId": raw(v3)}
    assert upgrade_step["state"] == "pause"
    assert event_step["event"] == {"type": "RESUME"}
    admin = api.ok("GET", "/machines/studio/i/i/admin")
    assert admin["machineVersion"]["id"] == v3 and "desiredMachineVersion" not in admin
    assert admin["context"] == {"breaks": 1, "version": 3, "upgrades": 1}
    # later events run on v3 (HEAT now leads to "blazing"; VOCALS replaced LEFT)
    assert api.send("studio", "i", "VOCALS").json()["tags"] == []
    assert api.send("studio", "i", "LEFT").json()["state"]["session"]["mix"]["vocals"] == "muted"
    # no migration leads from v3 (only v2 -> v1 goes back)
    assert_error(api.set_desired_version("studio", "i", v1), 400, "no-migration-path")


def test_an_event_the_new_version_refuses_leaves_the_instance_as_it_was(api: Api) -> None:
    v1 = api.create_machine("counter", COUNTER)
    strict = COUNTER.replace("return !context.owner || authContext.sub === context.owner;",
                             'return authContext.sub === "admin";')
    v2 = api.upload_version("counter", strict, make_current=False)
    api.upload_migration("counter", v1, v2, IDENTITY)
    api.create_instance("counter", "c")
    before = transitions(api, "c", "counter")
    assert api.set_desired_version("counter", "c", v2).status_code == 201
    assert_error(api.send("counter", "c", "inc"), 403, "rejected-by-machine-authorizer")
    assert transitions(api, "c", "counter") == before
    admin = api.ok("GET", "/machines/counter/i/c/admin")
    assert admin["machineVersion"]["id"] == v1 and admin["desiredMachineVersion"]["id"] == v2


def test_an_event_the_new_version_ignores_still_upgrades(api: Api) -> None:
    v1, v2, _ = studio(api)
    api.upload_migration("studio", v1, v2, V1_TO_V2)
    paused(api)
    api.set_desired_version("studio", "i", v2)
    state = api.send("studio", "i", "UNKNOWN").json()
    assert state["state"] == "pause"
    events = [t["event"]["type"] for t in transitions(api, "i")[-2:]]
    assert events == ["statebacked.upgrade", "UNKNOWN"]
    assert api.ok("GET", "/machines/studio/i/i/admin")["machineVersion"]["id"] == v2


# --- timers ----------------------------------------------------------------------------------


def timer_rows(server: Server) -> dict[str, int]:
    with server.services.db.read() as session:
        return {t.send_id: t.due_at_ms for t in session.scalars(select(Timer))}


def make_due(server: Server, send_id: str) -> None:
    """As if the timer's time had come (the scheduler finds it at its next poll)."""
    with server.services.db.transaction() as session:
        session.execute(update(Timer).where(Timer.send_id == send_id)
                        .values(due_at_ms=int(time.time() * 1000) - 1))


def wait_for(check: Any, what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def test_timers_keep_their_due_times_or_are_dropped_with_their_state(server: Server,
                                                                     api: Api) -> None:
    v1, v2, _ = studio(api)
    api.upload_migration("studio", v1, v2, V1_TO_V2)
    paused(api, "kept")
    paused(api, "moved")
    to_waiting = migration('(p) => p[0] === "pause" ? ["waiting"] : p')
    v1b = api.upload_version("studio", STUDIO_V1, make_current=False)
    api.upload_migration("studio", v1, v1b, to_waiting)
    with server.services.db.read() as session:
        armed = {row.slug: row.id for row in session.scalars(select(Instance))}
        due_at = {t.instance_id: t.due_at_ms for t in session.scalars(select(Timer))}
    api.set_desired_version("studio", "kept", v2)
    api.set_desired_version("studio", "moved", v1b)
    assert api.send("studio", "kept", "NOTHING").status_code == 200
    assert api.send("studio", "moved", "NOTHING").status_code == 200
    with server.services.db.read() as session:
        left = {t.instance_id: t.due_at_ms for t in session.scalars(select(Timer))}
    assert left == {armed["kept"]: due_at[armed["kept"]]}, "kept with its due time, or dropped"
    assert api.ok("GET", "/machines/studio/i/moved/admin")["state"] == "waiting"


def test_a_timer_delivery_upgrades_and_a_dropped_timer_is_not_delivered(server: Server,
                                                                        api: Api) -> None:
    v1, v2, _ = studio(api)
    api.upload_migration("studio", v1, v2, V1_TO_V2)
    v1b = api.upload_version("studio", STUDIO_V1, make_current=False)
    api.upload_migration("studio", v1, v1b, migration('(p) => p[0] === "pause" ? ["waiting"] : p'))
    paused(api, "fires")
    paused(api, "dropped")
    api.set_desired_version("studio", "fires", v2)
    api.set_desired_version("studio", "dropped", v1b)
    make_due(server, PAUSE_TIMER)

    def settled() -> bool:
        versions = {slug: api.ok("GET", f"/machines/studio/i/{slug}/admin")["machineVersion"]["id"]
                    for slug in ("fires", "dropped")}
        return versions == {"fires": v2, "dropped": v1b}

    wait_for(settled, "both timer deliveries to upgrade their instances")
    fired = [t["event"]["type"] for t in transitions(api, "fires")[-2:]]
    assert fired == ["statebacked.upgrade", PAUSE_TIMER]
    assert api.ok("GET", "/machines/studio/i/fires/admin")["state"] == {
        "session": {"mix": {"vocals": "muted", "right": "quiet"}}}
    assert transitions(api, "dropped")[-1]["event"]["type"] == "statebacked.upgrade"
    assert api.ok("GET", "/machines/studio/i/dropped/admin")["state"] == "waiting"
    assert timer_rows(server) == {}


# --- failures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tight_runtime() -> Iterator[Runtime]:
    """Small limits, so runaway migrations are stopped quickly."""
    rt = build_runtime(Settings(window_s=5.0, slice_s=0.5, memory_bytes=48 << 20), SystemClock())
    yield rt
    rt.close()


@pytest.fixture
def tight_api(settings: Settings, tight_runtime: Runtime) -> Iterator[Api]:
    app = create_app(settings, runtime=tight_runtime)
    made = init(settings, app.state.services.db)
    with run_server(app) as url, Api.for_key(url, made.key_id, made.secret) as api:
        yield api


@pytest.mark.parametrize(("upgrade_state", "message"), [
    ('(p) => { console.log("about to fail"); throw new Error("boom"); }', "threw Error: boom"),
    ("(p) => { while (true) {} }", "time limit"),
    ("(p) => { const a = []; for (;;) a.push(new ArrayBuffer(1 << 20)); }", "out of memory"),
    ('(p) => [...p, "nowhere"]', "has no state"),
    ('(p) => ["gone"]', 'no state ["gone"]'),
])
def test_a_failing_upgrade_changes_nothing_until_a_fixed_migration(
        tight_api: Api, upgrade_state: str, message: str) -> None:
    api = tight_api
    v1, v2, _ = studio(api)
    api.upload_migration("studio", v1, v2, migration(upgrade_state))
    paused(api)
    before = transitions(api, "i")
    admin_before = api.ok("GET", "/machines/studio/i/i/admin")
    api.set_desired_version("studio", "i", v2)
    failed = assert_error(api.send("studio", "i", "RESUME"), 409, "upgrade-failed")
    assert message in failed["error"] and "stays on its version" in failed["error"]
    assert transitions(api, "i") == before
    admin = api.ok("GET", "/machines/studio/i/i/admin")
    assert {**admin, "desiredMachineVersion": None} == {**admin_before,
                                                        "desiredMachineVersion": None}
    assert admin["desiredMachineVersion"]["id"] == v2, "the desired version stays set"
    # the next event tries again, with the newest migration between the two versions
    assert_error(api.send("studio", "i", "RESUME"), 409, "upgrade-failed")
    api.upload_migration("studio", v1, v2, V1_TO_V2)
    resumed = api.send("studio", "i", "RESUME")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == {
        "session": {"mix": {"vocals": "live", "right": {"loud": "hot"}}}}
    assert api.ok("GET", "/machines/studio/i/i/admin")["machineVersion"]["id"] == v2


def test_the_version_switch_needs_the_desired_version_it_applies(server: Server,
                                                                 api: Api) -> None:
    v1, v2, v3 = studio(api)
    api.upload_migration("studio", v1, v2, V1_TO_V2)
    api.upload_migration("studio", v2, v3, V2_TO_V3)
    paused(api)
    api.set_desired_version("studio", "i", v3)
    # as if `PUT .../v` (to v2) had landed while a step upgrading to v3 was running: that
    # step's version switch finds another desired version and writes nothing
    with server.services.db.read() as session:
        row = session.scalars(select(Instance)).one()
    with server.services.db.raw() as tx, pytest.raises(InstanceChangedError):
        upgrade_rows.switch_version(tx, row.id, uuid.UUID(raw(v2)))
    assert api.ok("GET", "/machines/studio/i/i/admin")["machineVersion"]["id"] == v1


def test_deleting_a_machine_deletes_its_migrations(server: Server, api: Api) -> None:
    v1, v2, _ = studio(api)
    api.upload_migration("studio", v1, v2, V1_TO_V2)
    api.ok("POST", "/machines/studio/migrations", {"fromMachineVersionId": v2,
                                                   "toMachineVersionId": v1})  # provisional
    assert api.delete_machine("studio").status_code == 204
    with server.services.db.read() as session:
        assert session.scalars(select(VersionMigration)).all() == []


def test_a_desired_version_out_of_reach_fails_the_event_and_changes_nothing(
        server: Server, api: Api) -> None:
    # `PUT .../v` refuses such a version; a race with an upgrade that moved the instance
    # meanwhile could still leave one (simulated here by writing it).
    v1, _, v3 = studio(api)
    paused(api)
    before = transitions(api, "i")
    with server.services.db.transaction() as session:
        session.execute(update(Instance).values(desired_version_id=uuid.UUID(raw(v3))))
    failed = assert_error(api.send("studio", "i", "RESUME"), 409, "upgrade-failed")
    assert "cannot be reached" in failed["error"]
    assert transitions(api, "i") == before
    assert api.set_desired_version("studio", "i", v1).status_code == 201  # cancels it
    assert api.send("studio", "i", "RESUME").status_code == 200


PINGER = """
import { createMachine, send } from "npm:xstate";
export default createMachine({
  id: "pinger", predictableActionArguments: true, initial: "idle",
  states: {
    idle: { on: { arm: { actions: send({ type: "ping" }, { delay: 60000, id: "ping" }) } } },
    finished: {},
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


def test_an_upgrade_into_a_final_state_drops_the_timers(server: Server, api: Api) -> None:
    v1 = api.create_machine("pinger", PINGER)
    v2 = api.upload_version("pinger", PINGER.replace("finished: {}", 'finished: { type: "final" }'),
                            make_current=False)
    api.upload_migration("pinger", v1, v2, migration('(p) => ["finished"]'))
    api.create_instance("pinger", "p")
    api.send("pinger", "p", "arm")
    assert list(timer_rows(server)) == ["ping"]
    api.set_desired_version("pinger", "p", v2)
    state = api.send("pinger", "p", "arm").json()   # a finished machine ignores it
    assert (state["state"], state["done"]) == ("finished", True)
    assert [t["event"]["type"] for t in transitions(api, "p", "pinger")][-1] == (
        "statebacked.upgrade")
    assert timer_rows(server) == {}, "xstate drops a finished machine's timers"
