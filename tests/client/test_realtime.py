"""Subscriptions over the real server's `/rt` (contract §4), both clients."""

from __future__ import annotations

from typing import Any

import pytest
from backstate_client import RejectedByMachineAuthorizerError, sign_token

from tests.client.bundles import PLAYER
from tests.client.conftest import MakeClient
from tests.conftest import Server

WAIT_S = 30


@pytest.fixture
def player(client: Any) -> None:
    client.machines.create("player")
    client.machine_versions.create("player", PLAYER, make_current=True)


def test_a_subscription_sees_updates_made_by_another_client(
    client: Any, make_client: MakeClient, player: None
) -> None:
    created = client.machine_instances.create("player", "shared")
    watcher = make_client()
    with watcher.machine_instances.subscribe("player", "shared") as subscription:
        assert subscription.get(timeout=WAIT_S) == created  # the current state, at once
        other = make_client()
        playing = other.machine_instances.send_event("player", "shared", "play")
        faster = other.machine_instances.send_event("player", "shared", "faster")
        seen = subscription.get(timeout=WAIT_S)
        assert seen == playing  # the same state, `ts` included, as HTTP returned it
        assert subscription.get(timeout=WAIT_S) == faster
        assert seen["states"] == ["playing", "playing.normal"]


def test_several_subscriptions_on_one_socket(
    client: Any, make_client: MakeClient, player: None
) -> None:
    for name in ["a", "b"]:
        client.machine_instances.create("player", name)
    watcher = make_client()
    a = watcher.machine_instances.subscribe("player", "a")
    b = watcher.machine_instances.subscribe("player", "b")
    assert a.get(timeout=WAIT_S)["state"] == "idle" and b.get(timeout=WAIT_S)["state"] == "idle"
    client.machine_instances.send_event("player", "b", "play")
    assert b.get(timeout=WAIT_S)["publicContext"] == {"plays": 1}
    client.machine_instances.send_event("player", "a", "play")
    assert a.get(timeout=WAIT_S)["publicContext"] == {"plays": 1}
    a.close()
    client.machine_instances.send_event("player", "b", "stop")
    assert b.get(timeout=WAIT_S)["state"] == "idle"
    b.close()


def test_a_reader_the_authorizer_refuses_gets_the_error(
    client: Any, make_client: MakeClient, server: Server, player: None
) -> None:
    client.machine_instances.create("player", "private", context={"owner": "alice"})
    admin = server.admin
    token = sign_token(admin.key_id, admin.secret, {"sub": "bob"}, expires_in="1h")
    bob = make_client(token=token)
    subscription = bob.machine_instances.subscribe("player", "private")
    with subscription, pytest.raises(RejectedByMachineAuthorizerError):
        subscription.get(timeout=WAIT_S)
