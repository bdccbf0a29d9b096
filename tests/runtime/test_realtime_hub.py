"""The hub's ordering on a real database (SQLite, and PostgreSQL when configured): states that
arrive early wait for their turn, repeats are dropped, a gap no source fills is read from the
change log, and one the log no longer has is skipped and counted. The sources are stood in for
by calls to `Hub.deliver`, as theirs are."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from runtime.instances.feed import Feed, StateCommitted
from runtime.realtime import Change, ChangeLogPruner, Hub
from runtime.results import InstanceState
from runtime.store import Database
from runtime.store import changes as change_rows
from runtime.store.models import Instance, Machine, MachineVersion, Org, StateChange

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


class StandInSource:
    def __init__(self) -> None:
        self.running = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False


class Seen:
    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.changed = asyncio.Event()

    def offer(self, change: Change) -> None:
        self.seqs.append(change.seq)
        self.changed.set()

    async def until(self, count: int) -> list[int]:
        async with asyncio.timeout(20):
            while len(self.seqs) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.seqs


def make_instance(db: Database, seq: int = 3) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    org, machine, version, instance = (uuid.uuid4() for _ in range(4))
    with db.transaction() as s:
        s.add(Org(id=org, name="o", created_at=NOW))
        s.flush()
        s.add(Machine(id=machine, org_id=org, slug="m", created_at=NOW))
        s.flush()
        s.add(MachineVersion(id=version, machine_id=machine, status="final", created_at=NOW))
        s.flush()
        s.add(Instance(id=instance, machine_id=machine, slug="i", version_id=version,
                       status="running", state_json="{}", context={}, view={"state": "a"},
                       ts=1000 + seq, seq=seq, cut_off=[], created_at=NOW))
    return org, instance, version


def change(instance: uuid.UUID, version: uuid.UUID, seq: int) -> Change:
    return Change(instance, seq, 1000 + seq, version, {"state": f"s{seq}"}, "{}")


def log(db: Database, instance: uuid.UUID, version: uuid.UUID, seqs: list[int]) -> None:
    with db.transaction() as s:
        for seq in seqs:
            s.add(StateChange(instance_id=instance, seq=seq, ts=1000 + seq, version_id=version,
                              view=json.dumps({"state": f"s{seq}"}), state_json="{}"))


def hub_for(db: Database, feed: Feed, source: StandInSource) -> Hub:
    return Hub(db, feed, lambda _hub: source, gap_s=0.05, linger_s=0.05)


def test_early_states_wait_for_their_turn_and_repeats_are_dropped(db: Database) -> None:
    org, instance, version = make_instance(db, seq=3)
    feed, source = Feed(), StandInSource()

    async def scenario() -> list[int]:
        hub = hub_for(db, feed, source)
        await hub.start()
        seen = Seen()
        topic = await hub.watch(org, "m", "i", seen)
        assert source.running and feed.listening
        # this process commits 5 before another process's 4 has arrived
        committed = StateCommitted(instance, version, 5, InstanceState(1005, {"state": "s5"}),
                                   "{}")
        thread = threading.Thread(target=feed.publish, args=(committed,))
        thread.start()
        thread.join()
        hub.deliver([change(instance, version, 3), change(instance, version, 4),
                     change(instance, version, 5), change(instance, version, 4)])
        seqs = await seen.until(3)
        hub.unwatch(topic, seen)
        assert not feed.listening, "no watcher: the feed pays its one attribute read"
        await hub.aclose()
        return seqs

    assert asyncio.run(scenario()) == [3, 4, 5]


def test_a_gap_no_source_fills_is_read_from_the_log_or_skipped(db: Database) -> None:
    org, instance, version = make_instance(db, seq=3)
    log(db, instance, version, [4, 5])
    other_org, other, other_version = make_instance(db, seq=1)

    async def scenario() -> tuple[list[int], list[int], int]:
        hub = hub_for(db, Feed(), StandInSource())
        await hub.start()
        filled, skipping = Seen(), Seen()
        await hub.watch(org, "m", "i", filled)
        await hub.watch(other_org, "m", "i", skipping)
        hub.deliver([change(instance, version, 6)])      # 4 and 5 are only in the log
        hub.deliver([change(other, other_version, 4)])   # 2 and 3 are nowhere any more
        result = await filled.until(4), await skipping.until(2), hub.skipped
        await hub.aclose()
        return result

    assert asyncio.run(scenario()) == ([3, 4, 5, 6], [1, 4], 2)


def test_watching_an_instance_that_does_not_exist_fails_and_leaves_nothing(db: Database) -> None:
    org, _instance, _version = make_instance(db)
    feed = Feed()

    async def scenario() -> None:
        hub = hub_for(db, feed, StandInSource())
        await hub.start()
        with pytest.raises(Exception, match="not found"):
            await hub.watch(org, "m", "nobody", Seen())
        assert not feed.listening
        await hub.aclose()

    asyncio.run(scenario())


def test_writing_an_instance_row_logs_its_state(db: Database) -> None:
    """The change log is written by the database (triggers): a state written any way is in
    it, in the writing transaction; a write that leaves `seq` alone is not a new state."""
    _org, instance, version = make_instance(db, seq=1)
    with db.transaction() as s:
        row = s.get(Instance, instance)
        assert row is not None
        row.status = "paused"
    with db.transaction() as s:
        row = s.get(Instance, instance)
        assert row is not None
        row.seq, row.ts, row.view, row.state_json = 2, 1002, {"state": "b"}, '{"value":"b"}'
    with db.read() as session:
        assert change_rows.missing_triggers(session) == []
        logged = change_rows.since(session, instance, 0)
    assert [(r.seq, r.ts, r.version_id, r.parsed_view(), r.state_json) for r in logged] == [
        (1, 1001, version, {"state": "a"}, "{}"),
        (2, 1002, version, {"state": "b"}, '{"value":"b"}'),
    ]


def test_a_version_switch_after_a_state_gives_that_state_the_new_version(db: Database) -> None:
    """An upgrade writes its state, then switches the version in the same transaction
    (runtime/store/commits.py): the state logged at that `seq` is the new version's."""
    _org, instance, v1 = make_instance(db, seq=1)
    with db.read() as session:
        found = session.get(Instance, instance)
        assert found is not None
        machine_id = found.machine_id
    v2 = uuid.uuid4()
    with db.transaction() as s:
        s.add(MachineVersion(id=v2, machine_id=machine_id, status="final", created_at=NOW))
    with db.transaction() as s:
        row = s.get(Instance, instance)
        assert row is not None
        row.seq, row.ts, row.view = 2, 1002, {"state": "upgraded"}
        s.flush()
        row.version_id = v2   # the switch: `seq` stays
        s.flush()
        row.seq, row.ts, row.view = 3, 1003, {"state": "after"}
    with db.read() as session:
        logged = change_rows.since(session, instance, 0)
    assert [(r.seq, r.version_id) for r in logged] == [(1, v1), (2, v2), (3, v2)]


def test_pruning_the_change_log_keeps_the_newest_row(db: Database) -> None:
    _org, instance, version = make_instance(db, seq=0)   # logs state 0
    log(db, instance, version, list(range(1, 8)))
    with db.raw_read() as tx:
        newest = change_rows.newest_id(tx)
    pruner = ChangeLogPruner(db, retention_s=60)
    pruner.prune_below(newest + 100)   # asked for more than allowed: the newest stays
    with db.read() as session:
        assert [row.seq for row in change_rows.since(session, instance, 0)] == [7]
    assert pruner.pruned == 7   # states 0 to 6
