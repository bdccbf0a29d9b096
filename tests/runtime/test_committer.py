"""Group commit: steps' writes that are ready together share one transaction, each still
fenced on its own."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from api.bootstrap import open_database
from api.settings import Settings
from runtime.errors import ChangedAfterWritesError, ConflictError
from runtime.instances.committer import GroupCommitter
from runtime.results import Macrostep, PublicState
from runtime.store import Database, commits
from runtime.store import machines as machine_store
from runtime.store import orgs as org_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime
from runtime.store.leases import Lease
from runtime.store.models import Instance
from runtime.store.prepared import RawTransaction

NOW = 1_700_000_000_000


def macrostep(value: str) -> Macrostep:
    return Macrostep(event={"type": value}, state_json=f'{{"value": "{value}"}}',
                     view=PublicState(value, [], False, None), context={})


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(Settings(database_url=database_url, secret="s"))
    yield database
    database.dispose()


def leased_instances(db: Database, count: int) -> list[Lease]:
    with db.transaction() as session:
        org = org_store.create(session, "o", now=to_datetime(NOW))
        machine = machine_store.create(session, org.id, "m", now=to_datetime(NOW))
        version = version_store.create_provisional(session, machine, now=to_datetime(NOW))
    made = []
    for n in range(count):
        lease = Lease(uuid.uuid4(), f"token-{n}")
        with db.raw() as tx:
            commits.insert_first(tx, lease=lease, owner="A", lease_expires_at=NOW + 60_000,
                                 machine_id=machine.id, slug=f"i{n}", version_id=version.id,
                                 step=macrostep("one"), ts=NOW, now=to_datetime(NOW))
        made.append(lease)
    return made


def fenced(lease: Lease, value: str) -> Any:
    def write(tx: RawTransaction) -> commits.Committed:
        return commits.commit(tx, lease=lease, seq=2, step=macrostep(value), ts=NOW + 1,
                              now=to_datetime(NOW + 1))
    return write


def states(db: Database) -> dict[uuid.UUID, str]:
    with db.read() as session:
        return {row.id: row.view["state"] for row in session.scalars(select(Instance))}


def run_together(committer: GroupCommitter, writes: list[Any]) -> list[Any]:
    """Start the writes on threads while a first write holds the transaction, so the rest
    queue behind it and make the next batch together; each thread's outcome."""
    outcomes: list[Any] = [None] * len(writes)
    release = threading.Event()

    def first(tx: RawTransaction) -> commits.Committed:
        release.wait(30)
        return writes[0](tx)

    def run(n: int, write: Any) -> None:
        try:
            outcomes[n] = committer.commit(write)
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=run, args=(0, first))]
    threads[0].start()
    deadline = time.monotonic() + 30
    while not committer._writing:  # the first write leads and holds the transaction
        assert time.monotonic() < deadline
        time.sleep(0.001)
    for n, write in enumerate(writes[1:], 1):
        threads.append(threading.Thread(target=run, args=(n, write)))
        threads[-1].start()
    while len(committer._queue) < len(writes) - 1:  # all the others wait in line
        assert time.monotonic() < deadline
        time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_writes_ready_together_share_one_transaction(db: Database) -> None:
    leases = leased_instances(db, 6)
    committer = GroupCommitter(db)
    outcomes = run_together(committer, [fenced(lease, f"s{n}") for n, lease in enumerate(leases)])
    assert [o.view["state"] for o in outcomes] == [f"s{n}" for n in range(6)]
    assert (committer.batches, committer.writes) == (2, 6)  # the leader's, then the other five
    assert states(db) == {lease.instance_id: f"s{n}" for n, lease in enumerate(leases)}


def test_a_write_that_lost_its_fence_fails_alone(db: Database) -> None:
    leases = leased_instances(db, 4)
    stale = Lease(leases[2].instance_id, "not-the-token")
    writes = [fenced(leases[0], "a"), fenced(leases[1], "b"), fenced(stale, "c"),
              fenced(leases[3], "d")]
    outcomes = run_together(GroupCommitter(db), writes)
    assert isinstance(outcomes[2], ConflictError)
    assert [outcomes[n].view["state"] for n in (0, 1, 3)] == ["a", "b", "d"]
    assert states(db)[leases[2].instance_id] == "one"  # nothing of it was written


def test_a_write_failing_in_the_database_is_retried_alone_and_fails_alone(db: Database) -> None:
    leases = leased_instances(db, 3)

    def broken(tx: RawTransaction) -> commits.Committed:
        fenced(leases[1], "half")(tx)   # writes, then fails in the database
        tx.execute(commits._RECORD, {"instance_id": uuid.uuid4(), "seq": 1, "event": {},
                                     "state": "x", "created_at": to_datetime(NOW)})
        raise AssertionError("the foreign key should have failed")

    outcomes = run_together(GroupCommitter(db), [fenced(leases[0], "a"), broken,
                                                 fenced(leases[2], "c")])
    assert isinstance(outcomes[1], db.engine.dialect.loaded_dbapi.IntegrityError)
    assert [outcomes[0].view["state"], outcomes[2].view["state"]] == ["a", "c"]
    assert states(db)[leases[1].instance_id] == "one"  # its half write was rolled back


def test_a_conflict_found_after_writing_rolls_back_only_its_writes(db: Database) -> None:
    leases = leased_instances(db, 3)

    def changed(tx: RawTransaction) -> commits.Committed:
        fenced(leases[1], "half")(tx)   # writes, then finds the instance changed (an upgrade
        raise ChangedAfterWritesError("desired version changed")   # whose switch is refused)

    outcomes = run_together(GroupCommitter(db), [fenced(leases[0], "a"), changed,
                                                 fenced(leases[2], "c")])
    assert isinstance(outcomes[1], ChangedAfterWritesError)
    assert [outcomes[0].view["state"], outcomes[2].view["state"]] == ["a", "c"]
    assert states(db)[leases[1].instance_id] == "one"  # its half write was rolled back


def test_a_write_alone_commits_at_once(db: Database) -> None:
    (lease,) = leased_instances(db, 1)
    committer = GroupCommitter(db)
    assert committer.commit(fenced(lease, "two")).seq == 2
    assert (committer.batches, committer.writes) == (1, 1)
