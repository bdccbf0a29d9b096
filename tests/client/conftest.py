"""Fixtures of the Python client's tests: a real server (tests/conftest.py's `server`, on
SQLite and PostgreSQL, with pages of 2 so that every cursor is followed) and the client under
test, `Client` or `AsyncClient` (through `Blocking`), so that one test body judges both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from backstate_client import AsyncClient, Client, sign_token

from api.settings import Settings
from tests.client.blocking import Blocking, LoopThread
from tests.conftest import TEST_SECRET, Server

PAGE_SIZE = 2

MakeClient = Callable[..., Any]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, secret=TEST_SECRET, window_s=5.0, page_size=PAGE_SIZE
    )


def admin_token(server: Server, **claims: Any) -> str:
    admin = server.admin
    return sign_token(admin.key_id, admin.secret, claims, expires_in="1h")


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_client(server: Server, client_kind: str) -> Iterator[MakeClient]:
    """`make_client(token=..., **options)`: a client of the kind under test on the server
    (by default with an admin token acting as no one), closed after the test."""
    made: list[Any] = []
    loop = LoopThread() if client_kind == "async" else None

    def make(token: Any = None, **options: Any) -> Any:
        options.setdefault("api_host", server.url)
        token = admin_token(server) if token is None else token
        if loop is None:
            client: Any = Client(token, **options)
        else:
            client = Blocking(AsyncClient(token, **options), loop)
        made.append(client)
        return client

    yield make
    for client in made:
        if loop is None:
            client.close()
        else:
            client.aclose()
    if loop is not None:
        loop.close()


@pytest.fixture
def client(make_client: MakeClient) -> Any:
    return make_client()


def run_flow(client: Any, flow: Any) -> Any:
    """Run one of the client's internal flows on the client under test (its private runner:
    for what no public method exposes alone, such as a bare upload)."""
    if isinstance(client, Blocking):
        return client.run_on_loop(client.target._runner.run(flow))
    return client._runner.run(flow)
