"""The serialization machinery under the API: leases, fencing, timers, `ts`, fairness.

Store-level tests drive `runtime.store` directly; the rest go through the real server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from api.app import build_runtime, create_app
from api.bootstrap import init, open_database
from api.settings import Settings
from runtime.clock import FakeClock, SystemClock
from runtime.errors import ConflictError, InstanceChangedError, NotFoundError
from runtime.instances.feed import Feed
from runtime.instances.leases import LeaseKeeper
from runtime.instances.runner import Runner
from runtime.results import Macrostep, PublicState, StepResult, Timer
from runtime.store import Database, commits, leases
from runtime.store import instances as instance_store
from runtime.store import machines as machine_store
from runtime.store import orgs as org_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime
from runtime.store.leases import Lease
from runtime.store.models import Instance as InstanceRow
from runtime.store.models import Machine as MachineRow
from runtime.store.models import Timer as TimerRow
from tests.conftest import TEST_SECRET, Server
from tests.support.bundles import TIMER, TOGGLER
from tests.support.client import Admin, Api
from tests.support.server import run_server

NOW = 1_700_000_000_000


def macrostep(value: str, *, timers: list[Timer] = (), cancels: list[str] = (),  # type: ignore[assignment]
              last: bool = False) -> Macrostep:
    return Macrostep(
        event={"type": value},
        state_json=f'{{"value": "{value}"}}',
        view=PublicState(value, [], False, None),
        context={},
        timers=list(timers),
        cancels=list(cancels),
        last=last,
    )


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(Settings(database_url=database_url, secret=TEST_SECRET))
    yield database
    database.dispose()


@pytest.fixture
def leased(db: Database) -> Lease:
    """An instance created through `insert_first`, leased to owner "A" with token "a"."""
    with db.transaction() as session:
        org = org_store.create(session, "o", now=to_datetime(NOW))
        machine = machine_store.create(session, org.id, "m", now=to_datetime(NOW))
        version = version_store.create_provisional(session, machine, now=to_datetime(NOW))
    lease = Lease(uuid.uuid4(), "a")
    with db.raw() as tx:
        commits.insert_first(
            tx,
            lease=lease,
            owner="A",
            lease_expires_at=NOW + 1000,
            machine_id=machine.id,
            slug="i",
            version_id=version.id,
            step=macrostep("one"),
            ts=NOW,
            now=to_datetime(NOW),
        )
    return lease


def pending_timers(session: Any, instance_id: uuid.UUID) -> list[TimerRow]:
    query = select(TimerRow).where(TimerRow.instance_id == instance_id)
    return list(session.scalars(query.order_by(TimerRow.due_at_ms)))


def take(db: Database, target: leases.Target, owner: str, token: str, now: int) -> Any:
    with db.raw(autocommit=True) as tx:
        return leases.take(tx, target, owner=owner, token=token, now_ms=now, ttl_ms=1000)


def acquire(db: Database, lease: Lease, owner: str, token: str, now: int) -> bool:
    return take(db, leases.Target.with_id(lease.instance_id), owner, token, now) is not None


def release(db: Database, instance_id: uuid.UUID, token: str) -> None:
    with db.raw(autocommit=True) as tx:
        leases.release(tx, Lease(instance_id, token))


def commit(db: Database, lease: Lease, seq: int, step: Macrostep, ts: int) -> None:
    with db.raw() as tx:
        commits.commit(tx, lease=lease, seq=seq, step=step, ts=ts, now=to_datetime(NOW))


def test_a_lease_excludes_others_until_released_or_expired(db: Database, leased: Lease) -> None:
    assert not acquire(db, leased, "B", "b", NOW + 10)
    release(db, leased.instance_id, "a")
    assert acquire(db, leased, "B", "b", NOW + 20)
    assert not acquire(db, leased, "C", "c", NOW + 30)
    assert acquire(db, leased, "C", "c", NOW + 20 + 1001)  # B's lease expired


def test_commits_are_fenced_by_the_lease_token(db: Database, leased: Lease) -> None:
    assert acquire(db, leased, "B", "b", NOW + 1001)  # A's lease expired; B took over
    with pytest.raises(ConflictError):
        commit(db, leased, 2, macrostep("stale"), NOW + 1)
    with db.transaction() as session:
        row = session.get(InstanceRow, leased.instance_id)
        assert row is not None and row.seq == 1 and row.view["state"] == "one"
        transitions, _ = instance_store.transitions_page(session, row, after_seq=0, limit=10)
        assert [t.seq for t in transitions] == [1]


def test_a_steps_last_commit_also_releases_its_lease(db: Database, leased: Lease) -> None:
    commit(db, leased, 2, macrostep("two"), NOW + 1)
    assert not acquire(db, leased, "B", "b", NOW + 10)  # still A's
    commit(db, leased, 3, macrostep("three", last=True), NOW + 2)
    assert acquire(db, leased, "B", "b2", NOW + 20)  # the last commit let go
    with pytest.raises(ConflictError):  # and A, no longer holding it, can write nothing
        commit(db, leased, 4, macrostep("four"), NOW + 3)


def test_a_waiting_process_gets_the_next_turn(db: Database, leased: Lease) -> None:
    assert not acquire(db, leased, "B", "b", NOW + 10)  # B now waits in line
    release(db, leased.instance_id, "a")
    assert not acquire(db, leased, "A", "a2", NOW + 20)  # A may not jump the line
    assert acquire(db, leased, "B", "b", NOW + 30)
    release(db, leased.instance_id, "b")
    assert acquire(db, leased, "A", "a3", NOW + 40)  # A claimed the line meanwhile


def test_an_absent_waiter_does_not_block_forever(db: Database, leased: Lease) -> None:
    assert not acquire(db, leased, "B", "b", NOW + 10)
    release(db, leased.instance_id, "a")
    assert acquire(db, leased, "A", "a2", NOW + 10 + 1001)  # B stopped polling


def org_of(db: Database, lease: Lease) -> uuid.UUID:
    with db.transaction() as session:
        row = session.get(InstanceRow, lease.instance_id)
        assert row is not None
        return session.get_one(MachineRow, row.machine_id).org_id


def test_take_leases_by_name_and_reads_what_the_last_holder_committed(
    db: Database, leased: Lease
) -> None:
    named = leases.Target.named(org_of(db, leased), "m", "i")
    assert take(db, named, "B", "b", NOW + 10) is None  # held by A: B now waits in line
    release(db, leased.instance_id, "a")
    assert take(db, named, "A", "a2", NOW + 20) is None  # A may not jump the line
    current = take(db, named, "B", "b", NOW + 30)
    assert (current.id, current.seq, current.view["state"]) == (leased.instance_id, 1, "one")
    commit(db, Lease(leased.instance_id, "b"), 2, macrostep("two"), NOW + 31)
    release(db, leased.instance_id, "b")
    again = take(db, leases.Target.with_id(leased.instance_id), "C", "c", NOW + 40 + 1001)
    assert (again.seq, again.ts, again.view["state"]) == (2, NOW + 31, "two")
    assert again.state_json == macrostep("two").state_json


def test_take_names_what_is_missing(db: Database, leased: Lease) -> None:
    org_id = org_of(db, leased)
    for target, parameter in [
        (leases.Target.named(org_id, "nope", "i"), "machineName"),
        (leases.Target.named(org_id, "m", "nope"), "instanceName"),
        (leases.Target.named(uuid.uuid4(), "m", "i"), "machineName"),  # another org's
        (leases.Target.with_id(uuid.uuid4()), "instanceName"),
    ]:
        with pytest.raises(NotFoundError) as caught:
            take(db, target, "B", "b", NOW + 2000)
        assert caught.value.parameter == parameter


def peek(db: Database, lease: Lease, owner: str, now: int) -> leases.Current | None:
    with db.raw_read() as tx:
        target = leases.Target.with_id(lease.instance_id)
        return leases.peek(tx, target, owner=owner, now_ms=now)


def commit_unleased(db: Database, lease: Lease, token: str, seq: int, step: Macrostep,
                    now: int, owner: str = "B") -> None:
    with db.raw() as tx:
        commits.commit_unleased(
            tx, lease=Lease(lease.instance_id, token, claimed=False), owner=owner, now_ms=now,
            lease_expires_at=now + 1000, seq=seq, step=step, ts=now, now=to_datetime(now),
        )  # fmt: skip


def seqs(db: Database, lease: Lease) -> tuple[int, list[int]]:
    """The instance's sequence number and those of its transitions."""
    with db.transaction() as session:
        row = session.get(InstanceRow, lease.instance_id)
        assert row is not None
        transitions, _ = instance_store.transitions_page(session, row, after_seq=0, limit=10)
        return row.seq, [t.seq for t in transitions]


def test_a_step_reads_a_free_instance_and_claims_its_lease_in_its_first_commit(
    db: Database, leased: Lease
) -> None:
    assert peek(db, leased, "B", NOW + 10) is None  # A holds it
    release(db, leased.instance_id, "a")
    current = peek(db, leased, "B", NOW + 20)
    assert current is not None and (current.seq, current.view["state"]) == (1, "one")
    commit_unleased(db, leased, "b", 2, macrostep("two"), NOW + 21)  # more commits follow
    assert not acquire(db, leased, "C", "c", NOW + 22)  # so B holds the lease now (C waits)
    commit(db, Lease(leased.instance_id, "b"), 3, macrostep("three", last=True), NOW + 23)
    commit_unleased(db, leased, "c", 4, macrostep("four", last=True), NOW + 24, owner="C")
    assert acquire(db, leased, "D", "d", NOW + 25)  # a last first commit leaves it free
    assert seqs(db, leased) == (4, [1, 2, 3, 4])


def test_a_first_commit_without_the_lease_writes_nothing_if_the_instance_changed(
    db: Database, leased: Lease
) -> None:
    release(db, leased.instance_id, "a")
    assert peek(db, leased, "B", NOW + 10) is not None  # B reads seq 1, then:
    commit_unleased(db, leased, "x", 2, macrostep("two", last=True), NOW + 11, owner="X")
    with pytest.raises(InstanceChangedError):  # someone committed since
        commit_unleased(db, leased, "b", 2, macrostep("mine", last=True), NOW + 12)
    assert acquire(db, leased, "C", "c", NOW + 13)
    with pytest.raises(InstanceChangedError):  # someone holds the lease
        commit_unleased(db, leased, "b", 3, macrostep("mine", last=True), NOW + 14)
    assert not acquire(db, leased, "A", "a2", NOW + 15)  # A now waits in line
    release(db, leased.instance_id, "c")
    with pytest.raises(InstanceChangedError):  # someone else is first in line
        commit_unleased(db, leased, "b", 3, macrostep("mine", last=True), NOW + 17)
    assert seqs(db, leased) == (2, [1, 2])
    with db.transaction() as session:
        row = session.get(InstanceRow, leased.instance_id)
        assert row is not None
        row.status = instance_store.PAUSED
    with pytest.raises(InstanceChangedError):  # the instance was paused
        commit_unleased(db, leased, "a4", 3, macrostep("mine", last=True), NOW + 18, owner="A")
    assert seqs(db, leased) == (2, [1, 2])


def test_a_step_that_loses_its_first_commit_runs_again_holding_the_lease(
    db: Database, leased: Lease
) -> None:
    release(db, leased.instance_id, "a")
    keeper = LeaseKeeper(db, SystemClock(), ttl_s=30, wait_s=5)
    runner = Runner(db, SystemClock(), keeper, Feed(), on_timers_armed=lambda: None)
    runs: list[int] = []

    def body(current: leases.Current, on_commit: Any) -> StepResult:
        runs.append(current.seq)
        if len(runs) == 1:  # another process commits between this step's read and its commit
            commit_unleased(db, leased, "x", 2, macrostep("theirs", last=True), NOW, owner="X")
        mine = macrostep("mine", last=True)
        on_commit([mine])
        return StepResult([mine], [], [])

    state = runner.existing(leases.Target.with_id(leased.instance_id), body)
    assert state.view["state"] == "mine"
    assert runs == [1, 2]  # read free, then, holding the lease, as the other commit left it
    assert seqs(db, leased) == (3, [1, 2, 3])
    assert acquire(db, leased, "C", "c", int(time.time() * 1000))  # and released it


def test_timers_are_upserted_by_send_id_and_cancelled(db: Database, leased: Lease) -> None:
    first = macrostep(
        "two",
        timers=[
            Timer("t1", {"type": "x"}, 100, NOW + 100),
            Timer("t2", {"type": "y"}, 200, NOW + 200),
        ],
    )
    second = macrostep("three", cancels=["t1"], timers=[Timer("t2", {"type": "z"}, 50, NOW + 55)])
    commit(db, leased, 2, first, NOW + 1)
    commit(db, leased, 3, second, NOW + 2)
    with db.transaction() as session:
        rows: list[TimerRow] = pending_timers(session, leased.instance_id)
        assert [(r.send_id, r.event, r.due_at_ms, r.attempts) for r in rows] == [
            ("t2", {"type": "z"}, NOW + 55, 0)
        ]


@pytest.fixture
def frozen_server(database_url: str, shared_runtime: object) -> Iterator[tuple[str, Admin]]:
    settings = Settings(database_url=database_url, secret=TEST_SECRET)
    app = create_app(settings, runtime=shared_runtime, clock=FakeClock(NOW, autojump=False))  # type: ignore[arg-type]
    made = init(settings, app.state.services.db)
    with run_server(app) as url:
        yield url, Admin(made.org_id, made.key_id, made.secret)


def test_ts_stays_monotonic_when_the_clock_stands_still(
    frozen_server: tuple[str, Admin],
) -> None:
    url, admin = frozen_server
    with Api.for_key(url, admin.key_id, admin.secret) as api:
        api.create_machine("toggler", TOGGLER)
        stamps = [api.create_instance("toggler", "t")["ts"]]
        stamps += [api.send("toggler", "t", "toggle").json()["ts"] for _ in range(3)]
        assert stamps == [NOW, NOW + 1, NOW + 2, NOW + 3]
        assert api.ok("GET", "/machines/toggler/i/t")["ts"] == NOW + 3


HOSTILE = """
import { createMachine } from "npm:xstate";
export default createMachine({
  id: "hostile",
  initial: "idle",
  states: {
    idle: {
      on: { hang: "waiting", toggle: "other", spin: { actions: () => { while (true) {} } } },
    },
    other: { on: { toggle: "idle" } },
    waiting: { invoke: { src: () => new Promise((r) => setTimeout(r, 600000)) } },
  },
});
export const allowRead = () => true;
export const allowWrite = () => true;
"""


@pytest.mark.slow
@pytest.mark.parametrize(("event", "status"), [("hang", 200), ("spin", 400)])
def test_a_hostile_step_delays_no_other_instance(
    database_url: str, event: str, status: int
) -> None:
    """One instance waiting out its whole window, or spinning until its time limit, while
    another instance's events go through: all of them are answered while the hostile step
    still runs."""
    window_s = 10.0
    settings = Settings(database_url=database_url, secret=TEST_SECRET, window_s=window_s)
    app = create_app(settings, runtime=build_runtime(settings, SystemClock()))
    made = init(settings, app.state.services.db)
    with run_server(app) as url, Api.for_key(url, made.key_id, made.secret) as api:
        api.create_machine("hostile", HOSTILE)
        api.create_instance("hostile", "slow")
        api.create_instance("hostile", "fast")
        took: list[float] = []
        started = threading.Event()

        def hostile() -> None:
            t0 = time.monotonic()
            started.set()
            assert api.send("hostile", "slow", event).status_code == status
            took.append(time.monotonic() - t0)

        thread = threading.Thread(target=hostile)
        thread.start()
        started.wait(10)
        boxes = app.state.services.core._mail._boxes
        deadline = time.monotonic() + 10
        while not any(key[2] == "slow" for key in boxes):   # its step is under way
            assert time.monotonic() < deadline
            time.sleep(0.005)
        for _ in range(5):
            assert api.send("hostile", "fast", "toggle").status_code == 200
        assert thread.is_alive(), "the other instance's events waited for the hostile step"
        thread.join(window_s * 3)
        assert took and took[0] >= window_s * 0.8


def test_timers_armed_by_a_step_are_persisted_and_cancelled(server: Server, api: Api) -> None:
    api.create_machine("timer", TIMER)
    api.create_instance("timer", "t")
    before = int(time.time() * 1000)
    api.send("timer", "t", "start")
    db = server.services.db

    def pending() -> list[TimerRow]:
        with db.transaction() as session:
            instance_id = session.scalar(select(InstanceRow.id).where(InstanceRow.slug == "t"))
            assert instance_id is not None
            return pending_timers(session, instance_id)

    (armed,) = pending()
    assert armed.event["type"].startswith("xstate.after(60000)")
    assert before + 60_000 <= armed.due_at_ms <= int(time.time() * 1000) + 60_000
    api.send("timer", "t", "stop")
    assert pending() == []
    api.send("timer", "t", "start")
    assert len(pending()) == 1
    assert api.delete_instance("timer", "t").status_code == 204
    with db.transaction() as session:
        assert session.scalar(select(TimerRow.id)) is None
