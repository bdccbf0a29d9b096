"""The `/rt` WebSocket of one real server (SQLite and PostgreSQL): what a subscriber is sent,
what every bad input gets, and that a client that stops reading holds nobody up.

A test never waits for "nothing more to come": to show that no frame was sent between two
states, it makes a known state and checks that it is the very next frame."""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from api.bootstrap import init
from api.settings import Settings
from api.tokens import mint
from runtime.engine import Runtime
from tests.conftest import Server
from tests.support.bundles import CHATTY
from tests.support.client import Admin, Api
from tests.support.realtime import Realtime, state_of
from tests.support.server import run_server

ALICE = {"sub": "alice"}
StartServer = Callable[..., AbstractContextManager[Server]]


@pytest.fixture
def start(settings: Settings, shared_runtime: Runtime) -> StartServer:
    """A server on the test's database with some settings changed."""

    @contextmanager
    def started(**overrides: Any) -> Iterator[Server]:
        changed = settings.model_copy(update=overrides)
        app = create_app(changed, runtime=shared_runtime)
        made = init(changed, app.state.services.db)
        with run_server(app) as url:
            yield Server(url, app, changed, Admin(made.org_id, made.key_id, made.secret))

    return started


@pytest.fixture
def chatty(server: Server) -> Iterator[Api]:
    """The chatty machine with instances i1 and i2; a client acting as alice."""
    with server.client(act=ALICE) as api:
        api.create_machine("chatty", CHATTY)
        api.create_instance("chatty", "i1")
        api.create_instance("chatty", "i2")
        yield api


def token(server: Server, act: dict[str, Any] | None = None, **kw: Any) -> str:
    return mint(server.admin.key_id, server.admin.secret, act=act or ALICE, **kw)


def sent(api: Api, event: Any, instance: str = "i1") -> dict[str, Any]:
    response = api.send("chatty", instance, event)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_subscriber_gets_the_current_state_then_every_committed_state_in_order(
    server: Server, chatty: Api
) -> None:
    with Realtime(server.url, token(server)) as rt:
        rt.subscribe("chatty", "i1")
        first = rt.update()
        assert first["machineName"] == "chatty" and first["machineInstanceName"] == "i1"
        assert state_of(first) == chatty.ok("GET", "/machines/chatty/i/i1")

        answers = [sent(chatty, "inc"), sent(chatty, "inc"), sent(chatty, "relay")]
        updates = [rt.update() for _ in range(5)]   # relay commits three states
        states = [state_of(u) for u in updates]
        assert [s["state"] for s in states] == ["idle", "idle", "relay1", "relay2", "idle"]
        assert [s["publicContext"]["count"] for s in states] == [1, 2, 2, 2, 2]
        # the same state as HTTP answered, `ts` included; strictly increasing
        assert states[0] == answers[0] and states[1] == answers[1] and states[4] == answers[2]
        stamps = [first["ts"]] + [s["ts"] for s in states]
        assert stamps == sorted(set(stamps))
        # nothing was sent twice or in between: the next frame is the next state
        assert sent(chatty, "inc") == state_of(rt.update())


def test_a_state_a_timer_commits_reaches_the_subscriber(server: Server, chatty: Api) -> None:
    with Realtime(server.url, token(server)) as rt:
        rt.subscribe("chatty", "i1")
        rt.update()
        assert sent(chatty, "ring")["state"] == "ringing"
        assert rt.update()["state"] == "ringing"
        rang = rt.update()   # 300 ms later, delivered by the scheduler
        assert rang["state"] == "idle"
        assert state_of(rang) == chatty.ok("GET", "/machines/chatty/i/i1")


def test_a_state_allowread_refuses_becomes_an_error_and_later_states_still_arrive(
    server: Server, chatty: Api
) -> None:
    with Realtime(server.url, token(server)) as rt:
        rt.subscribe("chatty", "i1", "sub-1")
        rt.update()
        sent(chatty, "hide")
        refused = rt.error()
        assert refused == {"type": "error", "requestId": "sub-1", "status": 403,
                           "code": "rejected-by-machine-authorizer",
                           "error": "allowRead rejected the request"}
        assert sent(chatty, "show") == state_of(rt.update())


def test_a_subscriber_allowread_refuses_gets_errors_not_states(
    server: Server, chatty: Api
) -> None:
    with Realtime(server.url, token(server, {"sub": "stranger"})) as rt:
        rt.subscribe("chatty", "i1", "s")
        assert rt.error()["code"] == "rejected-by-machine-authorizer"
        sent(chatty, "inc")
        assert rt.error() == {"type": "error", "requestId": "s", "status": 403,
                              "code": "rejected-by-machine-authorizer",
                              "error": "allowRead rejected the request"}


def test_instances_that_do_not_exist_are_404_and_the_connection_goes_on(
    server: Server, chatty: Api
) -> None:
    with Realtime(server.url, token(server)) as rt:
        rt.subscribe("chatty", "nobody", "a")
        assert rt.error() == {"type": "error", "requestId": "a", "status": 404,
                              "code": "not-found", "error": "instance 'nobody' not found",
                              "parameter": "instanceName"}
        rt.subscribe("no-machine", "i1", "b")
        missing = rt.error()
        assert (missing["requestId"], missing["status"]) == ("b", 404)
        rt.subscribe("chatty", "i1", "c")
        assert rt.update()["machineInstanceName"] == "i1"


def _key(api: Api, use: str) -> tuple[str, str]:
    made = api.ok("POST", "/keys", {"name": f"rt-{use}", "use": use})
    return made["id"], made["key"]


def test_bad_tokens_are_reported_per_subscription_never_by_refusing_the_upgrade(
    start: StartServer,
) -> None:
    with start(rt_token_grace_s=3600) as server, server.client() as admin:
        admin.create_machine("chatty", CHATTY)
        admin.create_instance("chatty", "i1")
        ci_id, ci_secret = _key(admin, "ci")
        key, secret = server.admin.key_id, server.admin.secret
        now = int(time.time())
        cases: list[tuple[str | None, dict[str, str], str]] = [
            (None, {}, "unauthorized"),
            ("not-a-jwt", {}, "unauthorized"),
            (mint(key, "sbsec_" + "not-the-secret-" * 4, act=ALICE), {}, "unauthorized"),
            (mint(ci_id, ci_secret, act=ALICE), {}, "missing-scope"),
            (mint(key, secret, act=ALICE), {"x-statebacked-org-id": "org_AAAAAAAAAAAAAAAAAAAAAA"},
             "missing-org"),
            (mint(key, secret, act=ALICE, now=now - 7200 - 600, expires_in_s=600), {},
             "unauthorized"),
        ]
        for bad, params, code in cases:
            with Realtime(server.url, bad, **params) as rt:
                for request_id in ("first", "again"):   # the socket stays open
                    rt.subscribe("chatty", "i1", request_id)
                    error = rt.error()
                    assert (error["requestId"], error["status"], error["code"]) == (
                        request_id, 403, code), (bad, error)

        # expired within the grace period: a page that stayed open reconnects
        stale = mint(key, secret, act=ALICE, now=now - 1800 - 60, expires_in_s=60)
        with Realtime(server.url, stale, **{"x-statebacked-org-id": server.admin.org_id}) as rt:
            rt.subscribe("chatty", "i1")
            assert rt.update()["state"] == "idle"


def test_unsubscribes_and_pings_are_tolerated_and_unsubscribing_stops_updates(
    server: Server, chatty: Api
) -> None:
    with Realtime(server.url, token(server)) as rt:
        rt.ping()
        rt.unsubscribe("chatty", "i1", "never-subscribed")
        rt.send({"type": "unsubscribe-from-instance"})
        rt.subscribe("chatty", "i1", "r1")
        rt.update()
        rt.unsubscribe("chatty", "i1", "r1")
        rt.ping()
        sent(chatty, "inc")
        rt.subscribe("chatty", "i2", "r2")
        assert rt.update()["machineInstanceName"] == "i2"   # not i1's inc


def test_subscriptions_to_one_instance_share_each_update(server: Server, chatty: Api) -> None:
    with Realtime(server.url, token(server)) as rt:
        rt.subscribe("chatty", "i1", "a")
        rt.update()
        rt.subscribe("chatty", "i1", "b")
        assert rt.update()["publicContext"] == {"count": 0}  # b is told where it stands too
        assert sent(chatty, "inc") == state_of(rt.update())
        assert sent(chatty, "inc") == state_of(rt.update())  # once, not once per subscription
        rt.unsubscribe("chatty", "i1", "a")
        assert sent(chatty, "inc") == state_of(rt.update())  # b still holds it
        rt.unsubscribe("chatty", "i1", "b")
        sent(chatty, "inc")
        rt.subscribe("chatty", "i2", "c")
        assert rt.update()["machineInstanceName"] == "i2"


BAD_FRAMES: list[tuple[str | bytes, dict[str, Any]]] = [
    ("not json", {"status": 400, "code": "invalid-message"}),
    ("[1, 2]", {"status": 400, "code": "invalid-message"}),
    ('"subscribe"', {"status": 400, "code": "invalid-message"}),
    (b'{"type": "ping"}', {"status": 400, "code": "invalid-message"}),
    ('{"type": "dance", "requestId": "d"}',
     {"status": 400, "code": "unknown-message-type", "requestId": "d", "parameter": "type"}),
    ('{"requestId": "n"}', {"status": 400, "code": "unknown-message-type", "requestId": "n"}),
    ('{"type": "subscribe-to-instance", "machineName": "chatty", "machineInstanceName": "i1"}',
     {"status": 400, "code": "invalid-parameter", "parameter": "requestId"}),
    ('{"type": "subscribe-to-instance", "machineName": "chatty", "machineInstanceName": "i1",'
     ' "requestId": 7}', {"status": 400, "code": "invalid-parameter", "parameter": "requestId"}),
    ('{"type": "subscribe-to-instance", "machineName": "no spaces", '
     '"machineInstanceName": "i1", "requestId": "m"}',
     {"status": 400, "code": "invalid-parameter", "parameter": "machineName", "requestId": "m"}),
    ('{"type": "subscribe-to-instance", "machineName": "chatty", '
     '"machineInstanceName": "i1\\n", "requestId": "i"}',
     {"status": 400, "code": "invalid-parameter", "parameter": "machineInstanceName",
      "requestId": "i"}),
    ('{"type": "ping", "pad": "' + "x" * 70_000 + '"}',
     {"status": 413, "code": "payload-too-large", "parameter": "message"}),
]


def test_every_bad_frame_gets_a_clear_error_and_the_connection_goes_on(
    server: Server, chatty: Api
) -> None:
    with Realtime(server.url, token(server)) as rt:
        for frame, expected in BAD_FRAMES:
            rt.socket.send(frame)
            error = rt.error()
            assert isinstance(error.pop("error"), str)
            expected = {"type": "error", **expected}
            assert {k: error.get(k) for k in expected} == expected, (frame[:80], error)
            assert "requestId" in error or "requestId" not in expected
        rt.subscribe("chatty", "i1")
        assert rt.update()["state"] == "idle"


def test_a_connection_may_hold_only_so_many_subscriptions(start: StartServer) -> None:
    with start(rt_max_subscriptions=3) as server, server.client(act=ALICE) as api:
        api.create_machine("chatty", CHATTY)
        for n in range(1, 5):
            api.create_instance("chatty", f"i{n}")
        with Realtime(server.url, token(server)) as rt:
            for n in range(1, 4):
                rt.subscribe("chatty", f"i{n}", f"r{n}")
                rt.update()
            for n in range(2000):   # thousands more: each refused, none kept
                rt.subscribe("chatty", "i4", f"x{n}")
            rt.unsubscribe("chatty", "i1", "r1")
            rt.subscribe("chatty", "i4", "r4")
            refused = 0
            while (frame := rt.next())["type"] == "error":
                assert (frame["status"], frame["code"]) == (400, "too-many-subscriptions"), frame
                assert "at most 3 instances" in frame["error"]
                refused += 1
            assert refused > 0
            assert frame["machineInstanceName"] == "i4"   # room again after an unsubscribe


def test_a_silent_connection_is_closed_after_the_idle_time(start: StartServer) -> None:
    with start(rt_idle_s=0.5) as server, Realtime(server.url, token(server)) as rt:
        with pytest.raises(ConnectionClosed) as closed:
            rt.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def test_a_client_that_never_reads_holds_up_neither_commits_nor_other_subscribers(
    server: Server, chatty: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backstate.realtime")
    with Realtime(server.url, token(server)) as reader, _never_reads(server) as stalled:
        reader.subscribe("chatty", "i1")
        reader.update()
        stalled.sendall(_frame('{"type":"subscribe-to-instance","machineName":"chatty",'
                               '"machineInstanceName":"i1","requestId":"s"}'))
        answers = []
        for size in itertools.islice(itertools.cycle([60_000, 60_001]), 150):
            answers.append(sent(chatty, {"type": "grow", "size": size}))
            assert state_of(reader.update()) == answers[-1]
        assert any("reads slower than the instance changes" in r.message for r in caplog.records)


@contextmanager
def _never_reads(server: Server) -> Iterator[socket.socket]:
    """A WebSocket client that upgrades, may send, and never reads a byte after the upgrade."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    path = "/rt?token=" + token(server)
    conn.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        yield conn
    finally:
        conn.close()


def _frame(text: str) -> bytes:
    """A masked text frame, as a client sends."""
    payload, mask = text.encode(), b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    head = bytes([0x81, 0x80 | length]) if length < 126 else (
        bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big"))
    return head + mask + masked
