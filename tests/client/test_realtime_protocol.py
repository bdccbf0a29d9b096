"""The client's side of the `/rt` protocol, against a scripted WebSocket server
(fake_realtime.py): frames, dispatch by instance and by request id, pings, unsubscribing,
reconnecting and subscribing again, refused upgrades. Both clients."""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from backstate_client import (
    AsyncClient,
    Client,
    MissingScopeError,
    NotFoundError,
    RejectedByMachineAuthorizerError,
    UnauthorizedError,
    sign_token,
)

from tests.client.blocking import Blocking, LoopThread
from tests.client.fake_realtime import WAIT_S, FakeRealtime, Received, state_update

TOKEN = "the-token"
SECRET = "sbsec_" + "s" * 32


@pytest.fixture
def fake() -> Iterator[FakeRealtime]:
    server = FakeRealtime()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest, fake: FakeRealtime) -> Iterator[Callable[..., Any]]:
    """`connect(token=..., **options)`: a client of the kind under test on the fake server."""
    url = fake.url
    made: list[Any] = []
    loop = LoopThread() if request.param == "async" else None

    def make(token: Any = TOKEN, **options: Any) -> Any:
        client: Any
        if loop is None:
            client = Client(token, api_host=url, **options)
        else:
            client = Blocking(AsyncClient(token, api_host=url, **options), loop)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close() if loop is None else client.aclose()
    if loop is not None:
        loop.close()


class Inbox:
    """What a subscription's callbacks were given."""

    def __init__(self) -> None:
        self.states: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.errors: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def next_state(self) -> Any:
        return self.states.get(timeout=WAIT_S)

    def next_error(self) -> Any:
        return self.errors.get(timeout=WAIT_S)


def subscribe(client: Any, machine: str, instance: str) -> tuple[Any, Inbox]:
    inbox = Inbox()
    sub = client.machine_instances.subscribe(machine, instance, inbox.states.put, inbox.errors.put)
    return sub, inbox


def frame(kind: str, sub: Any, machine: str, instance: str) -> dict[str, Any]:
    return {
        "type": kind, "machineName": machine, "machineInstanceName": instance,
        "requestId": sub.request_id,
    }  # fmt: skip


def messages(fake: FakeRealtime, count: int) -> list[Received]:
    return [fake.expect_message() for _ in range(count)]


def test_subscribe_then_updates_of_its_instance(fake: FakeRealtime, connect: Any) -> None:
    client = connect(org_id="org_1")
    sub, inbox = subscribe(client, "m", "i")
    opened = fake.expect_connection()
    assert opened.query == {"token": TOKEN, "x-statebacked-org-id": "org_1"}
    assert fake.expect_message().message == frame("subscribe-to-instance", sub, "m", "i")
    for ignored in ["not json", '"a string"', '[1, 2]', '{"type": "something-new"}']:
        fake.send(opened.connection, ignored)
    fake.send(opened.connection, state_update("m", "other", 1, "x"))
    fake.send(opened.connection, state_update("other", "i", 1, "x"))
    fake.send(opened.connection, state_update("m", "i", 2, {"a": "b"}, publicContext={"n": 1}))
    assert inbox.next_state() == {
        "ts": 2, "state": {"a": "b"}, "publicContext": {"n": 1}, "tags": [], "done": False,
        "states": ["a", "a.b"],
    }  # fmt: skip
    assert inbox.states.empty() and inbox.errors.empty()  # the frames before it gave nothing
    sub.close()
    assert fake.expect_message().message == frame("unsubscribe-from-instance", sub, "m", "i")
    assert fake.expect_closed() == opened.connection  # its last subscription: socket closed


def test_errors_go_to_the_subscription_they_name(fake: FakeRealtime, connect: Any) -> None:
    client = connect()
    a, a_inbox = subscribe(client, "m", "i")
    b, b_inbox = subscribe(client, "m", "j")
    opened = fake.expect_connection()
    assert {r.message["requestId"] for r in messages(fake, 2)} == {a.request_id, b.request_id}
    rejected = {"status": 403, "code": "rejected-by-machine-authorizer"}
    fake.send(opened.connection, {"type": "error", "requestId": a.request_id, **rejected})
    fake.send(opened.connection, {"type": "error", "requestId": "someone-else", "status": 404})
    fake.send(opened.connection, {"type": "error", "requestId": b.request_id, "status": 404})
    error = a_inbox.next_error()
    assert isinstance(error, RejectedByMachineAuthorizerError)
    assert str(error) == "instance subscription error" and error.status == 403
    assert isinstance(b_inbox.next_error(), NotFoundError)
    fake.send(opened.connection, state_update("m", "j", 5, "s"))
    assert b_inbox.next_state()["ts"] == 5  # still subscribed after its error
    assert a_inbox.errors.empty() and a_inbox.states.empty()


def test_reconnects_and_subscribes_again_with_a_fresh_token(
    fake: FakeRealtime, connect: Any
) -> None:
    counter = itertools.count()

    def short_lived() -> str:  # inside the refresh margin: a new token for every use
        return sign_token("sbk_k", SECRET, {"n": next(counter)}, expires_in=3)

    client = connect(token=short_lived)
    kept, kept_inbox = subscribe(client, "m", "kept")
    dropped, _ = subscribe(client, "m", "dropped")
    first = fake.expect_connection()
    assert len(messages(fake, 2)) == 2
    dropped.close()
    unsubscribe = frame("unsubscribe-from-instance", dropped, "m", "dropped")
    assert fake.expect_message().message == unsubscribe

    fake.drop(first.connection)
    assert fake.expect_closed() == first.connection
    second = fake.expect_connection()
    assert second.query["token"] != first.query["token"]
    # The active subscription again, with its request id; the closed one not.
    again = frame("subscribe-to-instance", kept, "m", "kept")
    assert fake.expect_message() == Received(second.connection, again)
    fake.send(second.connection, state_update("m", "kept", 9, "x"))
    assert kept_inbox.next_state()["ts"] == 9
    kept.close()
    assert fake.expect_message().message == frame("unsubscribe-from-instance", kept, "m", "kept")
    assert fake.expect_closed() == second.connection


def test_pings_while_connected(fake: FakeRealtime, connect: Any) -> None:
    client = connect(ws_ping_interval_s=0.05)
    sub, _ = subscribe(client, "m", "i")
    fake.expect_connection()
    assert fake.expect_message().message["type"] == "subscribe-to-instance"
    assert [r.message for r in messages(fake, 3)] == [{"type": "ping"}] * 3
    sub.close()


def test_a_refused_upgrade_is_reported_once_then_retried(
    fake: FakeRealtime, connect: Any
) -> None:
    refusal = '{"error": "no realtime for you", "code": "missing-scope"}'
    fake.refusals = [(403, refusal), (403, refusal), (503, "busy")]
    client = connect()
    sub, inbox = subscribe(client, "m", "i")
    error = inbox.next_error()
    assert isinstance(error, MissingScopeError)
    assert "realtime connection refused: no realtime for you" in str(error)
    opened = fake.expect_connection()  # the fourth attempt is accepted
    assert fake.expect_message().message == frame("subscribe-to-instance", sub, "m", "i")
    fake.send(opened.connection, state_update("m", "i", 1, "s"))
    assert inbox.next_state()["state"] == "s"
    assert inbox.errors.empty()  # one report for the whole outage


def test_without_callbacks_a_subscription_is_iterated(fake: FakeRealtime, connect: Any) -> None:
    client = connect()
    sub = client.machine_instances.subscribe("m", "i")
    opened = fake.expect_connection()
    fake.expect_message()
    fake.send(opened.connection, state_update("m", "i", 1, "a"))
    fake.send(opened.connection, {"type": "error", "requestId": sub.request_id, "status": 403})
    fake.send(opened.connection, state_update("m", "i", 2, "b"))
    assert sub.get(timeout=WAIT_S)["state"] == "a"
    with pytest.raises(UnauthorizedError):
        sub.get(timeout=WAIT_S)
    assert sub.get(timeout=WAIT_S)["state"] == "b"
    with pytest.raises(TimeoutError):
        sub.get(timeout=0.01)
    sub.close()
    assert list(sub) == []  # iteration ends with the subscription
    with pytest.raises(RuntimeError, match="closed"):
        sub.get(timeout=0.01)


def test_a_token_that_cannot_be_had_fails_subscribe(connect: Any) -> None:
    def broken() -> str:
        raise RuntimeError("no")

    with pytest.raises(UnauthorizedError, match="failed to retrieve token"):
        connect(token=broken).machine_instances.subscribe("m", "i")
