"""The timer claim protocol on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import concurrent.futures as cf
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from runtime.store import Database
from runtime.store import timers as timer_store
from runtime.store.models import Instance, Machine, MachineVersion, Org, Timer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def make_instance(db: Database) -> uuid.UUID:
    org, machine, version, instance = (uuid.uuid4() for _ in range(4))
    with db.transaction() as s:
        s.add(Org(id=org, name="o", created_at=NOW))
        s.flush()
        s.add(Machine(id=machine, org_id=org, slug=f"m{machine.hex[:6]}", created_at=NOW))
        s.flush()
        s.add(MachineVersion(id=version, machine_id=machine, status="final", created_at=NOW))
        s.flush()
        s.add(Instance(id=instance, machine_id=machine, slug="i", version_id=version,
                       status="running", state_json="{}", context={}, view={}, ts=0, seq=0,
                       cut_off=[], created_at=NOW))
    return instance


def arm(db: Database, instance: uuid.UUID, send_id: str, due: int) -> None:
    with db.transaction() as s:
        s.add(Timer(instance_id=instance, send_id=send_id, event={"type": send_id},
                    due_at_ms=due, attempts=0, created_at=NOW))


def claim(db: Database, now: int, owner: str = "p1", limit: int = 100) -> list[timer_store.Claimed]:
    with db.raw() as tx:
        return timer_store.claim_due(tx, now_ms=now, owner=owner, claim_ms=1000,
                                     limit=limit).timers


def test_claims_only_due_timers_earliest_first(db: Database):
    inst = make_instance(db)
    arm(db, inst, "late", 300)
    arm(db, inst, "b", 200)
    arm(db, inst, "a", 100)
    claimed = claim(db, 250)
    assert [t.send_id for t in claimed] == ["a", "b"]
    assert claimed[0].instance == "i" and claimed[0].machine.startswith("m")   # for its lock
    with db.raw() as tx:   # the claimed ones say nothing: the next unclaimed does
        assert timer_store.earliest_due(tx, 250) == 300


def test_earliest_due_of_claimed_timers_is_just_after_their_claim_expires(db: Database):
    inst = make_instance(db)
    arm(db, inst, "t", 100)
    with db.raw() as tx:
        assert timer_store.earliest_due(tx, 50) == 100
    claim(db, 200)   # claims for 1000 ms: expires at 1200
    with db.raw() as tx:
        assert timer_store.earliest_due(tx, 200) == 1201


def test_a_claimed_timer_is_not_claimed_again_until_its_claim_expires(db: Database):
    inst = make_instance(db)
    arm(db, inst, "t", 100)
    first = claim(db, 100, "p1")
    assert [t.send_id for t in first] == ["t"]
    assert claim(db, 500, "p2") == []
    again = claim(db, 1200, "p2")          # p1's claim (1 s) expired: p1 died
    assert [t.send_id for t in again] == ["t"]
    with db.transaction() as s:
        assert not timer_store.consume(s, first[0])     # p1's stale delivery writes nothing
        assert timer_store.consume(s, again[0])


def test_concurrent_claimers_never_share_a_timer(db: Database):
    inst = make_instance(db)
    for i in range(60):
        arm(db, inst, f"t{i}", 100)
    with cf.ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda owner: claim(db, 100, owner, limit=20),
                                ["a", "b", "c", "d", "e", "f"]))
    ids = [t.id for batch in batches for t in batch]
    assert len(ids) == len(set(ids)) == 60


def test_rearming_or_cancelling_makes_a_claimed_delivery_stale(db: Database):
    inst = make_instance(db)
    arm(db, inst, "t", 100)
    (claimed,) = claim(db, 100)
    with db.transaction() as s:         # a client event cancelled it meanwhile
        s.query(Timer).filter(Timer.id == claimed.id).delete()
    with db.transaction() as s:
        assert not timer_store.consume(s, claimed)


def test_retry_puts_the_timer_back_later_with_one_more_attempt(db: Database):
    inst = make_instance(db)
    arm(db, inst, "t", 100)
    (claimed,) = claim(db, 100)
    with db.transaction() as s:
        timer_store.retry(s, claimed, due_at_ms=30_100)
    assert claim(db, 30_000) == []
    (again,) = claim(db, 30_100)
    assert again.attempts == 1
