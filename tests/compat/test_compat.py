"""The unmodified official npm clients against a real `backstate serve` process.

`client_flow.mjs` drives `@statebacked/client` 0.1.37 and records each call's outcome; smply
0.1.18 is run command by command. Each check below is its own test, named after the call it
judges, so a failure names the client call that broke and shows what the client saw.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api import ids
from api.ids import Prefix
from tests.compat.conftest import CompatServer, Run, run_node, run_smply

pytestmark = [pytest.mark.compat, pytest.mark.slow]

Observations = dict[str, Any]


class Seen:
    """What the client did for one named call, with access to the other calls' results."""

    def __init__(self, name: str, observations: Observations, org_id: str):
        assert name in observations, f"client_flow.mjs recorded no {name!r} (did it stop early?)"
        self.name = name
        self.org_id = org_id
        self.observation = observations[name]
        self._all = observations

    def value(self) -> Any:
        assert self.observation["ok"], f"{self.name} raised {self.observation['error']}"
        return self.observation["value"]

    def raised(self, cls: str, code: str | None = None) -> None:
        assert not self.observation["ok"], (
            f"{self.name} should raise {cls}, but it returned {self.observation['value']!r}"
        )
        error = self.observation["error"]
        assert error["class"] == cls, f"{self.name} should raise {cls}, but raised {error}"
        if code is not None:
            assert error["code"] == code, f"{self.name} should carry code {code!r}: {error}"

    def of(self, other: str) -> Any:
        """Another call's value (the check depends on it)."""
        return Seen(other, self._all, self.org_id).value()


def _describe(exc: Exception) -> str:
    """A failed check's message; a KeyError or TypeError means the response had another shape."""
    return str(exc) if isinstance(exc, AssertionError) else f"unexpected shape: {exc!r}"


# --- @statebacked/client -----------------------------------------------------------------

CLIENT_MACHINE = "compat-client"

CLIENT_RAISES: dict[str, tuple[str, str | None]] = {
    "machines.create existing": ("ConflictError", None),
    "machines.create invalid name": ("ClientError", "invalid-parameter"),
    "instances.create existing": ("ConflictError", None),
    "machineVersions.create invalid bundle": ("ClientError", None),
    "instances.get unknown": ("NotFoundError", None),
    "instances.sendEvent unknown": ("NotFoundError", None),
    "instances.get by non-owner": (
        "RejectedByMachineAuthorizerError", "rejected-by-machine-authorizer"),
    "instances.sendEvent by non-owner": (
        "RejectedByMachineAuthorizerError", "rejected-by-machine-authorizer"),
    "instances.create denied": (
        "RejectedByMachineAuthorizerError", "rejected-by-machine-authorizer"),
    "machines.create with production key": ("MissingScopeError", "missing-scope"),
    "instances.list with production key": ("MissingScopeError", "missing-scope"),
    "instances.get with forged token": ("UnauthorizedError", None),
    "instances.get with unknown key token": ("UnauthorizedError", None),
    "instances.get with expired token": ("UnauthorizedError", None),
    "instances.get with another orgId": ("MissingOrgError", "missing-org"),
    "instances.get by admin acting as non-owner": (
        "RejectedByMachineAuthorizerError", "rejected-by-machine-authorizer"),
    "instances.get by production key acting as owner": ("MissingScopeError", "missing-scope"),
    "instances.sendEvent paused": ("ConflictError", "invalid-state"),
    "machines.delete with instances": ("ConflictError", None),
    "instances.get deleted": ("NotFoundError", None),
    "machines.get deleted": ("NotFoundError", None),
    "machines.list with deleted key": ("UnauthorizedError", None),
    "instances.updateDesiredVersion without migration": (
        "NoMigrationPathError", "no-migration-path"),
}  # fmt: skip

CLIENT_RETURNS_NOTHING = [
    "machines.create",
    "instances.setStatus paused",
    "instances.setStatus running",
    "instances.delete alice-1",
    "instances.delete alice-2",
    "instances.delete pinned",
    "instances.delete racer",
    "machines.delete",
    "keys.delete",
    "instances.updateDesiredVersion",
    "instances.updateDesiredVersion back",
]

CLIENT_CHECKS: dict[str, Callable[[Seen], None]] = {}


def client_check(name: str) -> Callable[[Callable[[Seen], None]], Callable[[Seen], None]]:
    def register(check: Callable[[Seen], None]) -> Callable[[Seen], None]:
        CLIENT_CHECKS[name] = check
        return check

    return register


def _raises(cls: str, code: str | None) -> Callable[[Seen], None]:
    return lambda seen: seen.raised(cls, code)


def _returns_nothing(seen: Seen) -> None:
    assert seen.value() is None, f"{seen.name} should resolve to undefined (201/204, no body)"


CLIENT_CHECKS.update({name: _raises(*expected) for name, expected in CLIENT_RAISES.items()})
CLIENT_CHECKS.update({name: _returns_nothing for name in CLIENT_RETURNS_NOTHING})


def assert_state(state: Any, value: Any, count: int, *, tags: list[str], done: bool) -> None:
    """An enhanced State as the client returns it (`states` is computed by the client)."""
    assert state["state"] == value
    assert state["publicContext"] == {"count": count}
    assert state["tags"] == tags
    assert state["done"] is done
    assert isinstance(state["ts"], int)


@client_check("machines.get before versions")
def _(seen: Seen) -> None:
    machine = seen.value()["machine"]
    assert isinstance(machine["createdAt"], str)
    assert "currentVersion" not in machine


@client_check("machineVersions.create code")
def _(seen: Seen) -> None:
    assert seen.value()["machineVersionId"].startswith("ver_")


@client_check("machineVersions.create gzippedCode")
def _(seen: Seen) -> None:
    v2 = seen.value()["machineVersionId"]
    assert v2.startswith("ver_")
    assert v2 != seen.of("machineVersions.create code")["machineVersionId"]


def _version_ids(seen: Seen) -> tuple[str, str]:
    return (
        seen.of("machineVersions.create code")["machineVersionId"],
        seen.of("machineVersions.create gzippedCode")["machineVersionId"],
    )


@client_check("machineVersions.list")
def _(seen: Seen) -> None:
    assert "cursor" not in seen.value(), "2 versions fit one page"
    listed = [(v["id"], v["clientInfo"]) for v in seen.value()["versions"]]
    v1, v2 = _version_ids(seen)
    assert listed == [(v1, "v1-plain"), (v2, "v2-gzip")]


@client_check("machines.get")
def _(seen: Seen) -> None:
    current = seen.value()["machine"]["currentVersion"]
    assert (current["id"], current["clientInfo"]) == (_version_ids(seen)[1], "v2-gzip")


@client_check("machines.list")
def _(seen: Seen) -> None:
    machines = {m["slug"]: m for m in seen.value()["machines"]}
    assert CLIENT_MACHINE in machines, machines
    assert machines[CLIENT_MACHINE]["currentVersion"]["id"] == _version_ids(seen)[1]


@client_check("instances.create")
def _(seen: Seen) -> None:
    state = seen.value()
    assert_state(state, "idle", 0, tags=[], done=False)
    assert state["states"] == ["idle"]


@client_check("instances.create pinned to v1")
def _(seen: Seen) -> None:
    assert_state(seen.value(), "idle", 0, tags=[], done=False)


@client_check("instances.get")
def _(seen: Seen) -> None:
    assert seen.value() == seen.of("instances.create")


@client_check("instances.sendEvent string")
def _(seen: Seen) -> None:
    state = seen.value()
    assert_state(state, {"running": "slow"}, 0, tags=["busy"], done=False)
    assert state["states"] == ["running", "running.slow"]
    assert state["ts"] > seen.of("instances.create")["ts"], "ts must grow with each transition"


@client_check("instances.sendEvent object")
def _(seen: Seen) -> None:
    state = seen.value()
    assert_state(state, {"running": "slow"}, 2, tags=["busy"], done=False)
    assert state["ts"] > seen.of("instances.sendEvent string")["ts"]


@client_check("instances.getOrCreate new")
def _(seen: Seen) -> None:
    assert_state(seen.value(), "idle", 0, tags=[], done=False)


@client_check("instances.sendEvent start alice-2")
def _(seen: Seen) -> None:
    # alice-2's owner came from getOrCreate's creation params, so bob's events would fail
    assert_state(seen.value(), {"running": "slow"}, 0, tags=["busy"], done=False)


@client_check("instances.sendEvent finish")
def _(seen: Seen) -> None:
    state = seen.value()
    assert_state(state, "done", 0, tags=[], done=True)
    assert state["states"] == ["done"]


@client_check("instances.getOrCreate existing")
def _(seen: Seen) -> None:
    assert seen.value() == seen.of("instances.sendEvent object"), "getOrCreate made a new one"


def _pages(seen: Seen, items: str) -> list[Any]:
    """The items of every page; each page but the last has a cursor, the last has none."""
    pages = seen.value()
    assert all("cursor" in page for page in pages[:-1]), "a page before the last has no cursor"
    assert "cursor" not in pages[-1], "the last page still has a cursor"
    return [item for page in pages for item in page[items]]


@client_check("instances.getOrCreate concurrent")
def _(seen: Seen) -> None:
    states = seen.value()
    assert all(state == states[0] for state in states), "the racers saw different instances"
    assert_state(states[0], "idle", 0, tags=[], done=False)


@client_check("instances.sendEvent concurrent")
def _(seen: Seen) -> None:
    by_count = sorted(seen.value(), key=lambda state: state["publicContext"]["count"])
    assert [s["publicContext"]["count"] for s in by_count] == [1, 2, 3, 4, 5], "one at a time"
    stamps = [s["ts"] for s in by_count]
    assert stamps == sorted(set(stamps)), "ts must grow with each transition"


@client_check("instances.list")
def _(seen: Seen) -> None:
    assert len(seen.value()) == 2, "4 instances, 2 per page: the client follows the cursor"
    instances = {i["slug"]: i for i in _pages(seen, "instances")}
    assert sorted(instances) == ["alice-1", "alice-2", "pinned", "racer"]
    v1, v2 = _version_ids(seen)
    assert instances["pinned"]["machineVersion"]["id"] == v1
    assert instances["alice-1"]["machineVersion"]["id"] == v2
    assert {i["status"] for i in instances.values()} == {"running"}


@client_check("instances.listTransitions")
def _(seen: Seen) -> None:
    transitions = _pages(seen, "transitions")
    sent = [t["event"] for t in transitions if not t["event"]["type"].startswith("xstate.")]
    assert sent == [{"type": "start"}, {"type": "inc", "by": 2}], "oldest first, as sent"
    assert transitions[-1]["state"] == {"running": "slow"}
    assert all(isinstance(t["createdAt"], str) for t in transitions)


@client_check("instances.admin.get")
def _(seen: Seen) -> None:
    admin = seen.value()
    assert admin["context"] == {"owner": "alice", "count": 2, "public": {"count": 2}}
    assert admin["state"] == {"running": "slow"}
    assert admin["status"] == "running"
    assert admin["machineVersion"]["id"] == _version_ids(seen)[1]


@client_check("instances.admin.get pinned")
def _(seen: Seen) -> None:
    assert seen.value()["machineVersion"]["id"] == _version_ids(seen)[0]


@client_check("instances.admin.get paused")
def _(seen: Seen) -> None:
    assert seen.value()["status"] == "paused"


@client_check("instances.sendEvent resumed")
def _(seen: Seen) -> None:
    assert seen.value()["publicContext"] == {"count": 3}, "the paused event must not count"


@client_check("instances.list after delete")
def _(seen: Seen) -> None:
    assert seen.value()["instances"] == []


@client_check("instances.get with orgId")
@client_check("instances.get with apiHost ending in /")
@client_check("instances.get by admin acting as owner")
def _(seen: Seen) -> None:
    assert seen.value() == seen.of("instances.sendEvent object")


def _raw(prefix: Prefix, pretty: str) -> str:
    """A pretty id as upgrade transitions show it: the raw UUID."""
    decoded = ids.decode(prefix, pretty)
    assert decoded is not None, f"{pretty!r} is not a {prefix}_ id"
    return str(decoded)


@client_check("machineVersionMigrations.create")
@client_check("machineVersionMigrations.create code")
def _(seen: Seen) -> None:
    assert seen.value()["machineVersionMigrationId"].startswith("mig_")


@client_check("instances.admin.get pinned upgrade pending")
def _(seen: Seen) -> None:
    admin = seen.value()
    v1, v2 = _version_ids(seen)
    assert admin["machineVersion"]["id"] == v1
    assert admin["desiredMachineVersion"]["id"] == v2


@client_check("instances.sendEvent upgrades pinned")
def _(seen: Seen) -> None:
    assert_state(seen.value(), {"running": "slow"}, 0, tags=["busy"], done=False)


@client_check("instances.admin.get pinned upgraded")
def _(seen: Seen) -> None:
    admin = seen.value()
    assert admin["machineVersion"]["id"] == _version_ids(seen)[1]
    assert "desiredMachineVersion" not in admin
    assert admin["context"]["migrated"] is True


@client_check("instances.listTransitions pinned")
def _(seen: Seen) -> None:
    events = [t["event"] for t in _pages(seen, "transitions")]
    v1, v2 = _version_ids(seen)
    migration = seen.of("machineVersionMigrations.create")["machineVersionMigrationId"]
    assert events[-2:] == [
        {"type": "statebacked.upgrade", "migrationPath": [_raw("mig", migration)],
         "fromMachineVersionId": _raw("ver", v1), "toMachineVersionId": _raw("ver", v2)},
        {"type": "start"},
    ]


@client_check("orgs.list")
def _(seen: Seen) -> None:
    orgs = seen.value()["orgs"]
    assert [(o["id"], o["role"]) for o in orgs] == [(seen.org_id, "admin")]
    assert set(orgs[0]["limits"]) == {"monthlyEventsLimit", "monthlyReadsLimit"}


@client_check("billing.get")
def _(seen: Seen) -> None:
    assert isinstance(seen.value()["url"], str)


@client_check("keys.create ci")
def _(seen: Seen) -> None:
    made = seen.value()
    assert made["id"].startswith("sbk_") and made["key"].startswith("sbsec_")


@client_check("keys.list")
def _(seen: Seen) -> None:
    keys = {k["id"]: k for k in _pages(seen, "keys")}
    made = keys[seen.of("keys.create ci")["id"]]
    assert made["name"] == "compat-ci"
    expected = {
        "machines.read",
        "machines.write",
        "machine-versions.read",
        "machine-versions.write",
    }
    assert set(made["scopes"]) == expected
    assert all("key" not in k for k in keys.values()), "secrets are shown once, at creation"


@client_check("machines.list with new ci key")
def _(seen: Seen) -> None:
    assert CLIENT_MACHINE not in [m["slug"] for m in seen.value()["machines"]]


@pytest.fixture(scope="module")
def client_observations(compat_server: CompatServer) -> Observations:
    env = {
        "API_URL": compat_server.url,
        "MACHINE": CLIENT_MACHINE,
        "ORG_ID": compat_server.org_id,
        "ADMIN_KEY_ID": compat_server.admin.key_id,
        "ADMIN_SECRET": compat_server.admin.secret,
        "PROD_KEY_ID": compat_server.production.key_id,
        "PROD_SECRET": compat_server.production.secret,
    }
    done = run_node("client_flow.mjs", env)
    assert done.returncode == 0, done.describe()
    observations: Observations = json.loads(done.stdout)
    return observations


def test_client_flow_made_exactly_the_checked_calls(client_observations: Observations) -> None:
    assert sorted(client_observations) == sorted(CLIENT_CHECKS)


@pytest.mark.parametrize("name", list(CLIENT_CHECKS))
def test_client(name: str, client_observations: Observations, compat_server: CompatServer) -> None:
    seen = Seen(name, client_observations, compat_server.org_id)
    try:
        CLIENT_CHECKS[name](seen)
    except (AssertionError, LookupError, TypeError) as exc:
        saw = json.dumps(seen.observation)
        raise AssertionError(f"{_describe(exc)}\nthe client saw: {saw}") from None


# --- smply ---------------------------------------------------------------------------------

M = "compat-smply"
I = "i1"  # noqa: E741
OWNER = """'{"sub":"u1"}'"""


@dataclass(frozen=True)
class Step:
    """One smply command line (as typed in a shell, or made from the earlier commands' output),
    its stdin and the check of its result."""

    name: str
    command: str | Callable[[Ran], str]
    stdin: str | None
    check: Callable[[Ran], None]

    def line(self, runs: dict[str, Run]) -> str:
        if isinstance(self.command, str):
            return self.command
        not_run_yet = Run([self.name], 0, "", "")
        return self.command(Ran(self.name, {**runs, self.name: not_run_yet}))


class Ran:
    """One smply command's result, with access to the earlier commands' output."""

    def __init__(self, name: str, runs: dict[str, Run]):
        self.name = name
        self.run = runs[name]
        self._runs = runs

    def pages(self) -> list[Any]:
        """Every JSON document smply printed, skipping "Valid bundle" or prompt text; a
        listing prints one array per page."""
        assert self.run.returncode == 0, f"smply {self.name} failed"
        lines = self.run.stdout.splitlines()
        starts = [i for i, line in enumerate(lines) if line[:1] in "[{"]
        assert starts, f"smply {self.name} printed no JSON"
        text, decoder, documents = "\n".join(lines[starts[0] :]), json.JSONDecoder(), []
        position = 0
        while position < len(text):
            document, position = decoder.raw_decode(text, position)
            documents.append(document)
            while position < len(text) and text[position].isspace():
                position += 1
        return documents

    def json(self) -> Any:
        """The one JSON document smply printed."""
        documents = self.pages()
        assert len(documents) == 1, f"smply {self.name} printed {len(documents)} documents"
        return documents[0]

    def failed_with(self, cls: str, code: str) -> None:
        assert self.run.returncode == 1, f"smply {self.name} should fail with {cls} ({code})"
        assert f"{cls} ({code})" in self.run.stderr, f"smply {self.name}: expected {cls} ({code})"

    def succeeded_saying(self, text: str) -> None:
        assert self.run.returncode == 0, f"smply {self.name} failed"
        assert text in self.run.stdout + self.run.stderr, f"smply {self.name} did not say {text!r}"

    def of(self, other: str) -> Any:
        return Ran(other, self._runs).json()


# Run in this order, each on what the previous ones left.
SMPLY_STEPS: dict[str, Step] = {}


def smply_step(
    name: str, command: str | Callable[[Ran], str], stdin: str | None = None
) -> Callable[[Callable[[Ran], None]], Callable[[Ran], None]]:
    def register(check: Callable[[Ran], None]) -> Callable[[Ran], None]:
        SMPLY_STEPS[name] = Step(name, command, stdin, check)
        return check

    return register


def _v2(ran: Ran) -> str:
    version: str = ran.of("machine-versions create -c")["machineVersionId"]
    return version


@smply_step("machines create --node", f"machines create -m {M} --node machine.js")
def _(ran: Ran) -> None:
    # esbuild inlined xstate into this bundle; the server loaded it to validate the version
    created = ran.json()
    assert created["name"] == M
    assert created["currentVersion"]["machineVersionId"].startswith("ver_")


@smply_step(
    "machine-versions create -c", f"machine-versions create -m {M} -r v2 --node machine.js -c"
)
def _(ran: Ran) -> None:
    assert "Valid bundle" in ran.run.stdout, "smply validates the bundle locally first"
    v2 = ran.json()["machineVersionId"]
    assert v2.startswith("ver_")
    assert v2 != ran.of("machines create --node")["currentVersion"]["machineVersionId"]


@smply_step("machines get", f"machines get -m {M}")
def _(ran: Ran) -> None:
    current = ran.json()["machine"]["currentVersion"]
    assert (current["id"], current["clientInfo"]) == (_v2(ran), "v2"), "-c made v2 current"


@smply_step(
    "instances create", f"""instances create -m {M} -i {I} -a {OWNER} -c '{{"owner":"u1"}}'"""
)
def _(ran: Ran) -> None:
    assert_state(ran.json(), "idle", 0, tags=[], done=False)


@smply_step(
    "instances create denied", f"""instances create -m {M} -i i2 -a '{{"sub":"blocked"}}'"""
)
def _(ran: Ran) -> None:
    # -a travels as x-statebacked-act: the authorizer saw {"sub": "blocked"}
    ran.failed_with("RejectedByMachineAuthorizerError", "rejected-by-machine-authorizer")


@smply_step(
    "instances send-event string", f"instances send-event -m {M} -i {I} -e start -a {OWNER}"
)
def _(ran: Ran) -> None:
    assert_state(ran.json(), {"running": "slow"}, 0, tags=["busy"], done=False)


@smply_step(
    "instances send-event json",
    f"""instances send-event -m {M} -i {I} -e '{{"type":"inc","by":5}}' -a {OWNER}""",
)
def _(ran: Ran) -> None:
    assert_state(ran.json(), {"running": "slow"}, 5, tags=["busy"], done=False)


@smply_step(
    "instances send-event non-owner",
    f"""instances send-event -m {M} -i {I} -e finish -a '{{"sub":"u2"}}'""",
)
def _(ran: Ran) -> None:
    ran.failed_with("RejectedByMachineAuthorizerError", "rejected-by-machine-authorizer")


@smply_step("instances get", f"instances get -m {M} -i {I}")
def _(ran: Ran) -> None:
    admin = ran.json()
    assert admin["context"] == {"owner": "u1", "count": 5, "public": {"count": 5}}
    assert admin["status"] == "running"
    assert admin["machineVersion"]["id"] == _v2(ran)


@smply_step("instances list", f"instances list -m {M}")
def _(ran: Ran) -> None:
    assert [(i["name"], i["status"]) for i in ran.json()] == [(I, "running")]


@smply_step("instances list-transitions", f"instances list-transitions -m {M} -i {I}")
def _(ran: Ran) -> None:
    pages = ran.pages()
    assert len(pages) == 2, "3 transitions, 2 per page: smply follows the cursor"
    transitions = [t for page in pages for t in page]
    sent = [t["event"] for t in transitions if not t["event"]["type"].startswith("xstate.")]
    assert sent == [{"type": "start"}, {"type": "inc", "by": 5}], "oldest first, as sent"


def _v1(ran: Ran) -> str:
    version: str = ran.of("machines create --node")["currentVersion"]["machineVersionId"]
    return version


# i1 runs v2; a migration from v2 to v1 lets it move back (`-t` is smply's global
# --access-token, so the migration's target is given as --to).
@smply_step(
    "instances set-desired-version without migration",
    lambda ran: f"instances set-desired-version -m {M} -i {I} -v {_v1(ran)}",
)
def _(ran: Ran) -> None:
    ran.failed_with("NoMigrationPathError", "no-migration-path")


@smply_step(
    "migrations create --node",
    lambda ran: f"migrations create -m {M} --from {_v2(ran)} --to {_v1(ran)} --node migration.js",
)
def _(ran: Ran) -> None:
    assert ran.json()["machineVersionMigrationId"].startswith("mig_")


@smply_step(
    "instances set-desired-version",
    lambda ran: f"instances set-desired-version -m {M} -i {I} -v {_v1(ran)}",
)
def _(ran: Ran) -> None:
    ran.succeeded_saying("Successfully set desired version")


@smply_step("instances get upgrade pending", f"instances get -m {M} -i {I}")
def _(ran: Ran) -> None:
    admin = ran.json()
    assert admin["machineVersion"]["id"] == _v2(ran)
    assert admin["desiredMachineVersion"]["id"] == _v1(ran)


@smply_step(
    "instances send-event upgrades",
    f"""instances send-event -m {M} -i {I} -e '{{"type":"inc","by":1}}' -a {OWNER}""",
)
def _(ran: Ran) -> None:
    assert_state(ran.json(), {"running": "slow"}, 6, tags=["busy"], done=False)


@smply_step("instances get upgraded", f"instances get -m {M} -i {I}")
def _(ran: Ran) -> None:
    admin = ran.json()
    assert admin["machineVersion"]["id"] == _v1(ran) and "desiredMachineVersion" not in admin
    assert admin["context"] == {"owner": "u1", "count": 6, "public": {"count": 6},
                                "migrated": True}


@smply_step("instances list-transitions upgraded", f"instances list-transitions -m {M} -i {I}")
def _(ran: Ran) -> None:
    events = [t["event"] for page in ran.pages() for t in page]
    migration = ran.of("migrations create --node")["machineVersionMigrationId"]
    upgrade = {"type": "statebacked.upgrade", "migrationPath": [_raw("mig", migration)],
               "fromMachineVersionId": _raw("ver", _v2(ran)),
               "toMachineVersionId": _raw("ver", _v1(ran))}
    assert events[-2:] == [upgrade, {"type": "inc", "by": 1}]


@smply_step("instances set-status paused", f"instances set-status -m {M} -i {I} -s paused", I)
def _(ran: Ran) -> None:
    ran.succeeded_saying("Set instance status")


@smply_step("instances send-event paused", f"instances send-event -m {M} -i {I} -e inc -a {OWNER}")
def _(ran: Ran) -> None:
    ran.failed_with("ConflictError", "invalid-state")


@smply_step("machines delete with instances", f"machines delete -m {M}", M)
def _(ran: Ran) -> None:
    # smply catches the 409 and prints a hint (exit code 0)
    ran.succeeded_saying("Machine has associated instances so cannot be deleted")


@smply_step("instances delete", f"instances delete -m {M} -i {I}", I)
def _(ran: Ran) -> None:
    ran.succeeded_saying("Deleted instance")


@smply_step("machines delete", f"machines delete -m {M}", M)
def _(ran: Ran) -> None:
    ran.succeeded_saying("Deleted machine")


@pytest.fixture(scope="module")
def smply_runs(compat_server: CompatServer, smply_home: Path) -> dict[str, Run]:
    runs = {}
    for step in SMPLY_STEPS.values():
        stdin = None if step.stdin is None else step.stdin + "\n"
        runs[step.name] = run_smply(
            smply_home, compat_server.url, *shlex.split(step.line(runs)), stdin=stdin
        )
    return runs


@pytest.mark.parametrize("name", list(SMPLY_STEPS))
def test_smply(name: str, smply_runs: dict[str, Run]) -> None:
    ran = Ran(name, smply_runs)
    try:
        SMPLY_STEPS[name].check(ran)
    except (AssertionError, LookupError, TypeError) as exc:
        raise AssertionError(f"{_describe(exc)}\n{ran.run.describe()}") from None
