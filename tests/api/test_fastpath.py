"""The fast path of the event and creation routes answers only the plain case, as the FastAPI
routes would, and hands everything else to FastAPI unchanged (body included). That its answers
are the routes' own, on a real server and database, is in test_fastpath_server.py."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from api.auth import Credentials, Principal
from api.fastpath import FastPath
from runtime.errors import AuthError, ConflictError

TOKEN = "Bearer good"
EVENTS_ONLY = "Bearer events-only"
STATE = {"ts": 5, "state": "on", "tags": [], "done": False}


class FakeAuth:
    def authenticate_cached(self, creds: Credentials) -> Principal | None:
        if creds.authorization == "Bearer uncached":
            return None
        if creds.authorization not in (TOKEN, EVENTS_ONLY):
            raise AuthError("invalid token")
        scopes = {"events.write", "instances.write"}
        if creds.authorization == EVENTS_ONLY:
            scopes = {"events.write"}
        if creds.org_id is not None:
            scopes = {"machines.read"}
        return Principal(uuid.uuid4(), uuid.uuid4(), frozenset(scopes), {"sub": "u"})


@dataclass
class FakeInstances:
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    created: list[tuple[str, str, dict[str, Any] | None, str | None]] = field(
        default_factory=list)

    async def create(
        self, principal: Principal, machine: str, slug: str, context: dict[str, Any] | None,
        version_id: str | None,
    ) -> dict[str, Any]:
        self.created.append((machine, slug, context, version_id))
        if slug == "taken":
            raise ConflictError("instance 'taken' already exists", code="already-exists")
        if slug == "broken":
            raise RuntimeError("a bug")
        return STATE

    async def send(
        self, principal: Principal, machine: str, slug: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        self.sent.append((machine, slug, event))
        if slug == "paused":
            raise ConflictError("instance 'paused' is paused", code="invalid-state")
        if slug == "broken":
            raise RuntimeError("a bug")
        return STATE


@dataclass
class FakeServices:
    auth: FakeAuth = field(default_factory=FakeAuth)
    instances: FakeInstances = field(default_factory=FakeInstances)


def call(
    path: str, body: bytes, *, method: str = "POST", headers: dict[str, str] | None = None
) -> tuple[dict[str, Any] | None, bytes | None, FakeServices]:
    """The response the fast path gave (None if it passed the request on) and the body the
    next app read (None if it was not called)."""
    services = FakeServices()
    passed: list[bytes] = []

    async def next_app(scope: Any, receive: Any, send: Any) -> None:
        passed.append((await receive())["body"])

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    all_headers = {"authorization": TOKEN, "content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
    }
    app = FastPath(next_app, services=lambda: services, body_limit=100)  # type: ignore[arg-type,return-value]
    asyncio.run(app(scope, receive, send))
    response = None
    if sent:
        response = {"status": sent[0]["status"], "json": json.loads(sent[1]["body"])}
    return response, (passed[0] if passed else None), services


def test_a_plain_event_is_answered_with_the_state_the_service_returns() -> None:
    response, passed, services = call("/machines/m/i/i-1/events", b'{"event": "toggle"}')
    assert response == {"status": 200, "json": STATE} and passed is None
    assert services.instances.sent == [("m", "i-1", {"type": "toggle"})]


def test_service_errors_are_answered_as_the_error_map_says() -> None:
    response, _, _ = call("/machines/m/i/paused/events", b'{"event": {"type": "go"}}')
    assert response == {
        "status": 409,
        "json": {"error": "instance 'paused' is paused", "code": "invalid-state"},
    }


def test_an_unexpected_error_is_a_json_500() -> None:
    response, passed, _ = call("/machines/m/i/broken/events", b'{"event": "go"}')
    assert passed is None
    assert response == {
        "status": 500,
        "json": {"error": "internal server error", "code": "internal-error"},
    }


def test_everything_else_goes_on_to_fastapi_with_its_body() -> None:
    event = b'{"event": "x"}'
    cases: list[tuple[str, bytes, dict[str, Any]]] = [
        ("/machines/m/i/i/events", b'{"event": 3}', {}),  # invalid body: FastAPI's 400
        ("/machines/m/i/i/events", b"not json", {}),
        ("/machines/m/i/a.b/events", event, {}),  # not a slug
        ("/machines/m/i/i/events", event, {"method": "GET"}),
        ("/machines/m/i/i", event, {}),
        ("/machines/m/i/i/events", event, {"headers": {"authorization": "Bad"}}),
        ("/machines/m/i/i/events", event, {"headers": {"authorization": "Bearer uncached"}}),
        ("/machines/m/i/i/events", event, {"headers": {"x-statebacked-org-id": "o"}}),  # scope
        ("/machines/m/i/i/events", event, {"headers": {"content-type": "text/plain"}}),
        ("/machines/m/i/i/events", event, {"headers": {"origin": "https://x.test"}}),  # CORS
        ("/machines/m/i/i/events", b'{"event": "%s"}' % (b"x" * 100), {}),  # over the limit
    ]
    for path, body, kw in cases:
        response, passed, services = call(path, body, **kw)
        assert response is None and passed == body, (path, body, kw)
        assert services.instances.sent == []


def test_a_plain_creation_is_answered_with_the_state_the_service_returns() -> None:
    body = b'{"slug": "c-1", "context": {"a": [1]}, "machineVersionId": "ver_x", "more": 1}'
    response, passed, services = call("/machines/m", body)
    assert response == {"status": 200, "json": STATE} and passed is None
    assert services.instances.created == [("m", "c-1", {"a": [1]}, "ver_x")]
    response, _, services = call("/machines/m", b'{"slug": "c-2"}')
    assert response == {"status": 200, "json": STATE}
    assert services.instances.created == [("m", "c-2", None, None)]


def test_creation_errors_are_answered_as_the_error_map_says() -> None:
    response, _, _ = call("/machines/m", b'{"slug": "taken"}')
    assert response == {
        "status": 409,
        "json": {"error": "instance 'taken' already exists", "code": "already-exists"},
    }
    response, passed, _ = call("/machines/m", b'{"slug": "broken"}')
    assert passed is None
    assert response == {
        "status": 500,
        "json": {"error": "internal server error", "code": "internal-error"},
    }


def test_every_other_creation_goes_on_to_fastapi_with_its_body() -> None:
    new = b'{"slug": "c"}'
    cases: list[tuple[str, bytes, dict[str, Any]]] = [
        ("/machines/m", b'{"slug": "a.b"}', {}),  # invalid body: FastAPI's 400
        ("/machines/m", b'{"slug": 3}', {}),
        ("/machines/m", b'{"context": {}}', {}),
        ("/machines/m", b'{"slug": "c", "context": []}', {}),
        ("/machines/m", b"[]", {}),
        ("/machines/m", b"not json", {}),
        ("/machines/a.b", new, {}),  # not a slug
        ("/machines/m/", new, {}),
        ("/machines", new, {}),  # another route
        ("/machines/m", new, {"method": "GET"}),
        ("/machines/m", new, {"headers": {"authorization": "Bad"}}),
        ("/machines/m", new, {"headers": {"authorization": "Bearer uncached"}}),
        ("/machines/m", new, {"headers": {"authorization": EVENTS_ONLY}}),  # scope
        ("/machines/m", new, {"headers": {"content-type": "text/plain"}}),
        ("/machines/m", new, {"headers": {"origin": "https://x.test"}}),  # CORS
        ("/machines/m", b'{"slug": "%s"}' % (b"x" * 100), {}),  # over the limit
    ]
    for path, body, kw in cases:
        response, passed, services = call(path, body, **kw)
        assert response is None and passed == body, (path, body, kw)
        assert services.instances.created == []
