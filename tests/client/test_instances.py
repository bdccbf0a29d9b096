"""Instances through the Python client, against a real server: every call, the getOrCreate
dance, the headers (org, act-as) and the errors by status and code."""

from __future__ import annotations

import time
from typing import Any

import pytest
from backstate_client import (
    ApiError,
    Client,
    ConflictError,
    MissingOrgError,
    MissingScopeError,
    NotFoundError,
    RejectedByMachineAuthorizerError,
    UnauthorizedError,
    sign_token,
)

from tests.client.bundles import PLAYER
from tests.client.conftest import MakeClient, admin_token
from tests.client.test_machines import all_pages
from tests.conftest import Server


@pytest.fixture
def player(client: Any) -> str:
    client.machines.create("player")
    made = client.machine_versions.create("player", PLAYER, make_current=True)
    version_id: str = made["machineVersionId"]
    return version_id


def test_create_get_send_return_the_state(client: Any, player: str) -> None:
    before = int(time.time() * 1000)
    created = client.machine_instances.create("player", "p1")
    assert created == {
        "ts": created["ts"], "state": "idle", "publicContext": {"plays": 0},
        "tags": [], "done": False, "states": ["idle"],
    }  # fmt: skip
    assert before - 5 <= created["ts"]
    playing = client.machine_instances.send_event("player", "p1", "play")
    assert playing["state"] == {"playing": "normal"}
    assert playing["states"] == ["playing", "playing.normal"]  # as XState's toStrings
    assert playing["tags"] == ["busy"] and playing["publicContext"] == {"plays": 1}
    assert playing["ts"] > created["ts"]
    faster = client.machine_instances.send_event("player", "p1", {"type": "faster"})
    assert faster["state"] == {"playing": "fast"}
    assert client.machine_instances.get("player", "p1") == faster
    done = client.machine_instances.send_event("player", "p1", "finish")
    assert done["done"] is True and done["states"] == ["done"]


def test_create_with_context_and_version(client: Any, player: str) -> None:
    state = client.machine_instances.create(
        "player", "mine", context={"owner": "alice", "plays": 41}, machine_version_id=player
    )
    assert state["publicContext"] == {"plays": 0}  # shallow merge keeps the machine's public
    admin = client.machine_instances.admin.get("player", "mine")
    assert admin["context"] == {"owner": "alice", "plays": 41, "public": {"plays": 0}}
    assert admin["machineVersion"]["id"] == player and admin["status"] == "running"
    with pytest.raises(ConflictError):
        client.machine_instances.create("player", "mine")
    with pytest.raises(NotFoundError):
        unknown = "ver_AAAAAAAAAAAAAAAAAAAAAA"
        client.machine_instances.create("player", "x", machine_version_id=unknown)


def test_get_or_create(client: Any, server: Server, player: str) -> None:
    made = client.machine_instances.get_or_create("player", "g", context={"plays": 7})
    assert made["state"] == "idle"
    client.machine_instances.send_event("player", "g", "play")
    again = client.machine_instances.get_or_create("player", "g", context=lambda: pytest.fail())
    assert again["publicContext"] == {"plays": 8}  # read, not created: the context was not made

    # Another caller creates the instance between our read (404) and our create (409): the
    # dance ends with a read of theirs. The context function runs between the two requests
    # (in the async client, on its event loop: the rival is a blocking client of its own).
    rival = Client(admin_token(server), api_host=server.url)

    def rival_wins() -> dict[str, Any]:
        rival.machine_instances.create("player", "race", context={"plays": 100})
        rival.machine_instances.send_event("player", "race", "play")
        return {"plays": 0}

    raced = client.machine_instances.get_or_create("player", "race", context=rival_wins)
    assert raced["state"] == {"playing": "normal"}  # the rival's instance, one event on
    assert raced["publicContext"] == {"plays": 101}
    rival.close()
    with pytest.raises(NotFoundError):
        client.machine_instances.get_or_create("nope", "x")


def test_list_and_transitions_follow_cursors(client: Any, player: str) -> None:
    for name in ["a", "b", "c"]:
        client.machine_instances.create("player", name)
    page = client.machine_instances.list("player")
    assert len(page["instances"]) == 2 and "cursor" in page
    listed = all_pages(client.machine_instances.list, "player", key="instances")
    assert [i["slug"] for i in listed] == ["a", "b", "c"]
    assert {i["status"] for i in listed} == {"running"}
    assert {i["machineVersion"]["id"] for i in listed} == {player}
    for event in ["play", "faster", "stop"]:
        client.machine_instances.send_event("player", "a", event)
    list_transitions = client.machine_instances.list_transitions
    transitions = all_pages(list_transitions, "player", "a", key="transitions")
    assert [t["event"]["type"] for t in transitions] == ["xstate.init", "play", "faster", "stop"]
    assert transitions[-1]["state"] == "idle"


def test_pause_resume_and_delete(client: Any, player: str) -> None:
    client.machine_instances.create("player", "p")
    client.machine_instances.dangerously.set_status("player", "p", "paused")
    assert client.machine_instances.admin.get("player", "p")["status"] == "paused"
    with pytest.raises(ConflictError) as paused:
        client.machine_instances.send_event("player", "p", "play")
    assert paused.value.code == "invalid-state"
    client.machine_instances.dangerously.set_status("player", "p", "running")
    assert client.machine_instances.send_event("player", "p", "play")["state"] == {
        "playing": "normal"
    }
    client.machine_instances.dangerously.delete(
        "player", "p", danger_data_will_be_deleted_forever=True
    )
    with pytest.raises(NotFoundError):
        client.machine_instances.get("player", "p")
    with pytest.raises(NotFoundError):
        client.machine_instances.dangerously.delete(
            "player", "p", danger_data_will_be_deleted_forever=True
        )


def test_authorizers_see_the_token_and_act_as(
    client: Any, make_client: MakeClient, server: Server, player: str
) -> None:
    alice = make_client(token=user_token(server, "alice"))
    bob = make_client(token=user_token(server, "bob"))
    alice.machine_instances.create("player", "owned", context={"owner": "alice"})
    assert alice.machine_instances.send_event("player", "owned", "play")["tags"] == ["busy"]
    with pytest.raises(RejectedByMachineAuthorizerError) as read:
        bob.machine_instances.get("player", "owned")
    assert read.value.status == 403 and read.value.code == "rejected-by-machine-authorizer"
    with pytest.raises(RejectedByMachineAuthorizerError):
        bob.machine_instances.send_event("player", "owned", "stop")
    with pytest.raises(RejectedByMachineAuthorizerError):
        make_client(token=user_token(server, "blocked")).machine_instances.create("player", "b")
    # An admin token acting as alice (x-statebacked-act) passes alice's authorizers.
    as_alice = make_client(act_as={"sub": "alice"})
    assert as_alice.machine_instances.send_event("player", "owned", "stop")["state"] == "idle"
    as_bob = make_client(act_as={"sub": "bob"})
    with pytest.raises(RejectedByMachineAuthorizerError):
        as_bob.machine_instances.get("player", "owned")


def test_org_header(make_client: MakeClient, server: Server, player: str) -> None:
    right = make_client(org_id=server.admin.org_id)
    assert right.machine_instances.create("player", "o")["state"] == "idle"
    wrong = make_client(org_id="org_AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(MissingOrgError) as refused:
        wrong.machine_instances.get("player", "o")
    assert refused.value.code == "missing-org"


def test_scopes_and_bad_tokens(
    client: Any, make_client: MakeClient, server: Server, player: str
) -> None:
    key = client.keys.create("web", use="production")
    production = make_client(token=sign_token(key["id"], key["key"], {"sub": "u"}, expires_in="1h"))
    assert production.machine_instances.create("player", "w")["state"] == "idle"
    with pytest.raises(MissingScopeError) as scope:
        production.machine_instances.list("player")
    assert scope.value.code == "missing-scope" and scope.value.status == 403
    with pytest.raises(MissingScopeError):
        production.machines.create("nope")
    forged = sign_token(server.admin.key_id, "sbsec_wrong", {"sub": "u"}, expires_in="1h")
    with pytest.raises(UnauthorizedError) as bad:
        make_client(token=forged).machines.list()
    assert type(bad.value) is UnauthorizedError and bad.value.status == 403
    expired = sign_token(
        server.admin.key_id, server.admin.secret, {}, expires_at=time.time() - 3600
    )
    with pytest.raises(UnauthorizedError):
        make_client(token=expired).machines.list()


def test_other_statuses_are_plain_api_errors(client: Any, player: str) -> None:
    client.machine_instances.create("player", "big")
    with pytest.raises(ApiError) as too_large:
        big = {"type": "play", "x": "y" * 1_100_000}
        client.machine_instances.send_event("player", "big", big)
    assert type(too_large.value) is ApiError
    assert too_large.value.status == 413 and too_large.value.code == "payload-too-large"


def user_token(server: Server, sub: str) -> str:
    return sign_token(server.admin.key_id, server.admin.secret, {"sub": sub}, expires_in="1h")
