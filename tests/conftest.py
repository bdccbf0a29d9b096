"""Fixtures shared by the server's tests.

`backend` runs each test that uses a database against SQLite and PostgreSQL (the latter only
when BACKSTATE_TEST_POSTGRES_URL points at a server; otherwise that case is skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.app import build_runtime, create_app
from api.bootstrap import init
from api.services import Services
from api.settings import Settings
from runtime.clock import SystemClock
from runtime.engine import Runtime
from tests.support.client import Admin, Api
from tests.support.databases import POSTGRES_ENV, postgres_schema, postgres_url, sqlite_url
from tests.support.server import run_server

TEST_SECRET = "test-server-secret"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    base = postgres_url()
    if base is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://u:p@host/db)")
    with postgres_schema(base) as url:
        yield url


@pytest.fixture(scope="session")
def shared_runtime() -> Runtime:
    """One real runtime per test session (building one compiles the sandbox)."""
    return build_runtime(Settings(window_s=5.0), SystemClock())


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret=TEST_SECRET, window_s=5.0)


@dataclass
class Server:
    url: str
    app: FastAPI
    settings: Settings
    admin: Admin

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def client(self, **kw: Any) -> Api:
        return Api.for_key(self.url, self.admin.key_id, self.admin.secret, **kw)


@pytest.fixture
def server(settings: Settings, shared_runtime: Runtime) -> Iterator[Server]:
    app = create_app(settings, runtime=shared_runtime)
    services: Services = app.state.services
    made = init(settings, services.db)
    with run_server(app) as url:
        yield Server(url, app, settings, Admin(made.org_id, made.key_id, made.secret))


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    client = server.client()
    yield client
    client.close()
