"""Prepared statements on the DBAPI connection (the hot path's store access), on both databases:
the same values as SQLAlchemy reads and writes, one transaction, nothing kept on failure."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select, update

from api.bootstrap import open_database
from api.settings import Settings
from runtime.errors import UnavailableError
from runtime.store import Database
from runtime.store.models import Org, Transition, table
from runtime.store.prepared import Prepared, RawTransaction
from tests.conftest import TEST_SECRET

ORGS = table(Org)
TRANSITIONS = table(Transition)
NOW = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)

# the columns given (the others have server defaults or may be NULL)
ADD_ORG = Prepared(insert(ORGS), column_keys=["id", "name", "created_at"])
RENAME = Prepared(
    update(ORGS)
    .where(ORGS.c.id == bindparam("org_id"))
    .values(name=bindparam("new_name"))
    .returning(ORGS.c.id, ORGS.c.name, ORGS.c.created_at),
    returns=[ORGS.c.id, ORGS.c.name, ORGS.c.created_at],
)
SELECT_ORG = Prepared(
    select(ORGS.c.id, ORGS.c.created_at).where(ORGS.c.name == bindparam("org_name")),
    returns=[ORGS.c.id, ORGS.c.created_at],
)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(Settings(database_url=database_url, secret=TEST_SECRET))
    yield database
    database.dispose()


def add_org(db: Database, name: str) -> uuid.UUID:
    org_id = uuid.uuid4()
    with db.raw() as tx:
        assert tx.execute(ADD_ORG, {"id": org_id, "name": name, "created_at": NOW}) == 1
    return org_id


def test_values_round_trip_as_sqlalchemy_reads_and_writes_them(db: Database) -> None:
    org_id = add_org(db, "acme")
    with db.read() as session:
        org = session.get_one(Org, org_id)
        assert (org.name, org.created_at) == ("acme", NOW)
    with db.raw() as tx:
        assert tx.first(RENAME, {"org_id": org_id, "new_name": "acme2"}) == (org_id, "acme2", NOW)
        assert tx.first(SELECT_ORG, {"org_name": "acme2"}) == (org_id, NOW)
        assert tx.first(SELECT_ORG, {"org_name": "nobody"}) is None
        assert tx.first(RENAME, {"org_id": uuid.uuid4(), "new_name": "x"}) is None


def test_json_columns_and_constants_baked_into_the_statement(db: Database) -> None:
    org_id = add_org(db, "json")
    record = Prepared(
        insert(TRANSITIONS).values(state=["a", {"b": None}]),
        column_keys=["instance_id", "seq", "event", "created_at"],
    )
    instance_id = _instance(db, org_id)
    event = {"type": "inc", "nested": [1, 2.5, "x", None, True]}
    with db.raw() as tx:
        params = {"instance_id": instance_id, "seq": 2, "event": event, "created_at": NOW}
        tx.execute(record, params)
    with db.read() as session:
        row = session.get_one(Transition, (instance_id, 2))
        assert (row.event, row.state, row.created_at) == (event, ["a", {"b": None}], NOW)


def test_a_failure_keeps_nothing_of_the_transaction(db: Database) -> None:
    org_id = uuid.uuid4()
    with pytest.raises(RuntimeError), db.raw() as tx:
        tx.execute(ADD_ORG, {"id": org_id, "name": "gone", "created_at": NOW})
        raise RuntimeError("the step failed")
    with db.raw(autocommit=True) as tx:
        assert tx.first(SELECT_ORG, {"org_name": "gone"}) is None
    add_org(db, "kept")  # the connection went back to the pool usable


def _instance(db: Database, org_id: uuid.UUID) -> uuid.UUID:
    """An instance row to hang transitions from (through the ORM store functions)."""
    from runtime.results import Macrostep, PublicState
    from runtime.store import commits, machines, versions
    from runtime.store.leases import Lease

    with db.transaction() as session:
        machine = machines.create(session, org_id, "m", now=NOW)
        version = versions.create_provisional(session, machine, now=NOW)
    lease = Lease(uuid.uuid4(), "t")
    step = Macrostep({"type": "x"}, "{}", PublicState("s", [], False, None), {}, [], [])
    with db.raw() as tx:
        commits.insert_first(
            tx,
            lease=lease,
            owner="o",
            lease_expires_at=0,
            machine_id=machine.id,
            slug="i",
            version_id=version.id,
            step=step,
            ts=0,
            now=NOW,
        )
    return lease.instance_id


def test_raw_transactions_reuse_their_connections(db: Database) -> None:
    with db.raw_read() as tx:
        first = tx._cursor.connection
    with db.raw() as tx:
        assert tx._cursor.connection is first   # the most recently used one, no checkout


def test_a_connection_that_broke_is_closed_and_the_next_transaction_gets_a_new_one(
        db: Database) -> None:
    # A lost connection is an outage (UnavailableError, 503) where the driver says so.
    lost = (db.engine.dialect.loaded_dbapi.Error, UnavailableError)
    with pytest.raises(lost), db.raw() as tx:
        broken = tx._cursor.connection
        _break(db, tx)
        tx.first(SELECT_ORG, {"org_name": "x"})
    with db.raw() as tx:
        assert tx._cursor.connection is not broken
        assert tx.first(SELECT_ORG, {"org_name": "nobody"}) is None
    add_org(db, "after-the-break")


def test_an_idle_connection_is_pinged_before_use(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.raw_read() as tx:
        idle = tx._cursor.connection
    idle.close()   # as a database restart would leave it
    monkeypatch.setattr("runtime.store.rawpool.PING_AFTER_S", 0.0)
    with db.raw_read() as tx:
        assert tx._cursor.connection is not idle
        assert tx.first(SELECT_ORG, {"org_name": "nobody"}) is None


def _break(db: Database, tx: RawTransaction) -> None:
    """Lose the transaction's connection as a server restart would."""
    if db.dialect == "postgresql":
        with pytest.raises(db.engine.dialect.loaded_dbapi.Error):
            tx._cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    else:
        tx._cursor.connection.close()
