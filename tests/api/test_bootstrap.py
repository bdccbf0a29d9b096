"""Starting a server: migrations, SQLite settings, the server secret, settings from the env."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from api.bootstrap import init, open_database, server_secret
from api.settings import Settings
from tests.conftest import Server
from tests.support.bundles import TOGGLER
from tests.support.client import Api
from tests.support.databases import sqlite_url


def test_migrations_create_every_table(database_url: str) -> None:
    db = open_database(Settings(database_url=database_url))
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "orgs",
        "keys",
        "machines",
        "machine_versions",
        "instances",
        "transitions",
        "timers",
        "server_meta",
        "alembic_version",
    } <= tables
    db.migrate()  # idempotent
    db.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    db = open_database(Settings(database_url=sqlite_url(tmp_path)))
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() > 0
    db.dispose()


def test_a_generated_secret_is_kept_and_reused(tmp_path: Path) -> None:
    settings = Settings(database_url=sqlite_url(tmp_path))
    db = open_database(settings)
    first = init(settings, db)
    assert server_secret(settings, db) == server_secret(settings, db)
    db.dispose()
    db = open_database(settings)  # a restart: the same secret opens the same key
    again = init(settings, db)
    assert (again.org_id, again.key_id, again.secret) == (first.org_id, first.key_id, first.secret)
    assert first.created and not again.created
    db.dispose()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKSTATE_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("BACKSTATE_WINDOW_S", "12.5")
    settings = Settings()
    assert settings.database_url == "sqlite:///elsewhere.db" and settings.window_s == 12.5


def test_concurrent_creates_of_one_instance_make_exactly_one(server: Server, api: Api) -> None:
    api.create_machine("toggler", TOGGLER)

    def create(_: int) -> int:
        with server.client() as client:
            return client.request("POST", "/machines/toggler", {"slug": "t"}).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(create, range(6)))
    assert statuses == [200] + [409] * 5
    events = api.ok("GET", "/machines/toggler/i/t/events")["transitions"]
    assert [t["event"]["type"] for t in events] == ["xstate.init"]


def test_the_migrations_create_what_the_models_declare(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from runtime.store.models import Base

    db = open_database(Settings(database_url=database_url))
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    db.dispose()
