"""On a real server and database (SQLite and PostgreSQL), the fast path (`api.fastpath`) answers a
creation exactly as the FastAPI route does, for good and bad requests: each request is sent
twice, once as the fast path takes it and once with an `Origin` header, which only the FastAPI
stack serves, and a wrapper around the stack records which requests reached it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.fastpath import FastPath
from tests.conftest import Server
from tests.support.bundles import COUNTER, TOGGLER
from tests.support.client import Api

ORIGIN = {"origin": "https://app.example"}


@pytest.fixture
def stacked(server: Server) -> Iterator[list[str]]:
    """The paths of the requests the fast path handed on to FastAPI."""
    front: FastPath = server.app.front  # type: ignore[attr-defined]
    stack = front.app
    reached: list[str] = []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await stack(scope, receive, send)

    front.app = recording
    yield reached
    front.app = stack


def both(api: Api, stacked: list[str], path: str, fast_body: Any,
         stack_body: Any | None = None) -> tuple[httpx.Response, httpx.Response]:
    """The same request through the fast path and through the stack (`stack_body`: another
    body, for a creation that must not meet the first one's instance)."""
    before = len(stacked)
    fast = api.request("POST", path, fast_body)
    assert len(stacked) == before, f"{path} {fast_body}: the fast path did not answer"
    stack = api.request("POST", path, fast_body if stack_body is None else stack_body,
                        headers=ORIGIN)
    assert len(stacked) == before + 1
    return fast, stack


def same_answer(fast: httpx.Response, stack: httpx.Response) -> None:
    assert fast.status_code == stack.status_code, (fast.text, stack.text)
    assert fast.headers["content-type"] == stack.headers["content-type"]
    fast_body, stack_body = fast.json(), stack.json()
    if fast.status_code == 200:   # two instances: all but their time
        assert isinstance(fast_body.pop("ts"), int) and isinstance(stack_body.pop("ts"), int)
    assert fast_body == stack_body


def test_creations_are_answered_as_the_route_answers(server: Server, api: Api,
                                                     stacked: list[str]) -> None:
    v1 = api.create_machine("counter", COUNTER)
    api.upload_version("counter", TOGGLER)
    other = api.create_machine("toggler", TOGGLER)
    api.ok("POST", "/machines", {"slug": "empty"})
    api.create_instance("counter", "taken")   # the token is cached from here on
    created = [
        ({"slug": "a1"}, {"slug": "a2"}),
        ({"slug": "b1", "context": {"count": 41, "x": [1]}, "machineVersionId": v1},
         {"slug": "b2", "context": {"count": 41, "x": [1]}, "machineVersionId": v1}),
        ({"slug": "c1", "unknown": True}, {"slug": "c2", "unknown": True}),
    ]
    for fast_body, stack_body in created:
        fast, stack = both(api, stacked, "/machines/counter", fast_body, stack_body)
        assert fast.status_code == 200, fast.text
        same_answer(fast, stack)
    assert api.ok("GET", "/machines/counter/i/b1/admin")["context"]["count"] == 41
    errors = [
        ("/machines/counter", {"slug": "taken"}),                              # 409
        ("/machines/counter", {"slug": "d", "machineVersionId": "ver_nope"}),  # 404
        ("/machines/counter", {"slug": "d", "machineVersionId": other}),       # 404
        ("/machines/empty", {"slug": "d"}),                                     # 400
        ("/machines/nope", {"slug": "d"}),                                      # 404
    ]
    for path, body in errors:
        fast, stack = both(api, stacked, path, body)
        assert fast.status_code in (400, 404, 409), fast.text
        same_answer(fast, stack)
    with server.client(act={"sub": "blocked"}) as blocked:   # allowWrite: initialization
        refused = {"slug": "e", "machineVersionId": v1}   # COUNTER refuses "blocked"
        first = blocked.request("POST", "/machines/counter", refused)   # caches the token
        assert first.status_code == 403
        fast, stack = both(blocked, stacked, "/machines/counter", refused)
        assert fast.status_code == 403
        same_answer(fast, stack)
    slugs = {i["slug"] for i in api.ok("GET", "/machines/counter/i")["instances"]}
    assert slugs == {"taken", "a1", "a2", "b1", "b2", "c1", "c2"}


def test_requests_the_fast_path_cannot_answer_reach_the_route(server: Server, api: Api,
                                                              stacked: list[str]) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "taken")
    invalid = [{"slug": "a.b"}, {"slug": 3}, {"context": {}}, {"slug": "x", "context": [1]}, []]
    for body in invalid:
        before = len(stacked)
        response = api.request("POST", "/machines/counter", body)
        assert response.status_code == 400, response.text
        assert response.json()["code"], response.text
        assert stacked[before:] == ["/machines/counter"]
    with Api(server.url, "not-a-token") as stranger:
        before = len(stacked)
        assert stranger.request("POST", "/machines/counter", {"slug": "f"}).status_code == 403
        assert stacked[before:] == ["/machines/counter"]
