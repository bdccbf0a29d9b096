"""The schema: Alembic's migrations create exactly `runtime/store/models.py`, and the migration
that added upgrades (0007) keeps every row of a database that had data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from runtime.store.db import MIGRATIONS, Database
from runtime.store.models import Base


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def alembic(conn: Connection, verb: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    getattr(command, verb)(config, revision)
    conn.commit()


def test_migrations_create_the_models(db: Database) -> None:
    db.migrate()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_0007_keeps_instances_transitions_and_timers(db: Database) -> None:
    ids = {name: uuid.uuid4() for name in ("org", "machine", "version", "instance")}
    now = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        ("orgs", {"id": ids["org"], "name": "o", "created_at": now}),
        ("machines", {"id": ids["machine"], "org_id": ids["org"], "slug": "m",
                      "current_version_id": None, "created_at": now}),
        ("machine_versions", {"id": ids["version"], "machine_id": ids["machine"],
                              "status": "final", "client_info": "", "bundle": None,
                              "created_at": now}),
        ("instances", {"id": ids["instance"], "machine_id": ids["machine"], "slug": "i",
                       "version_id": ids["version"], "status": "running", "state_json": "{}",
                       "context": "{}", "view": "{}", "ts": 1, "seq": 1, "cut_off": "[]",
                       "created_at": now}),
        ("transitions", {"instance_id": ids["instance"], "seq": 1, "event": "{}",
                         "state": '"a"', "created_at": now}),
        ("timers", {"instance_id": ids["instance"], "send_id": "t", "event": "{}",
                    "due_at_ms": 5, "attempts": 0, "created_at": now}),
    ]
    uuid_as = (lambda u: u.hex) if db.dialect == "sqlite" else (lambda u: u)
    with db.engine.connect() as conn:
        alembic(conn, "upgrade", "0002")
        for table, row in rows:
            values = {k: uuid_as(v) if isinstance(v, uuid.UUID) else v for k, v in row.items()}
            columns = ", ".join(values)
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES "
                              f"({', '.join(':' + k for k in values)})"), values)
        conn.commit()

        def count(table: str) -> int:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

        alembic(conn, "upgrade", "head")
        assert [count(t) for t in ("instances", "transitions", "timers")] == [1, 1, 1]
        desired = conn.execute(text("SELECT desired_version_id FROM instances")).scalar_one()
        assert desired is None
        alembic(conn, "downgrade", "0002")
        assert [count(t) for t in ("instances", "transitions", "timers")] == [1, 1, 1]
        alembic(conn, "upgrade", "head")
