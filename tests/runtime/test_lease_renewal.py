"""The lease renewer when the database cannot be reached: it keeps trying, and gives up a lease
whose expiry passed meanwhile (another process may hold it by then); a renewal that finds a
lease no longer ours forgets it. On a fake clock, against a real SQLite database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runtime.clock import FakeClock
from runtime.errors import UnavailableError
from runtime.instances.leases import LeaseKeeper
from runtime.store import Database
from runtime.store.leases import Lease


class Outage:
    """A database whose raw transactions fail while `down`, as an unreachable one does."""

    def __init__(self, db: Database):
        self.db = db
        self.down = False

    @contextmanager
    def raw(self, **kw: Any) -> Iterator[Any]:
        if self.down:
            raise UnavailableError("the database is unreachable")
        with self.db.raw(**kw) as tx:
            yield tx


def test_a_lease_not_renewed_before_its_expiry_is_given_up(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'l.db'}")
    db.migrate()
    clock = FakeClock(1_000_000, autojump=False)
    outage = Outage(db)
    keeper = LeaseKeeper(outage, clock, ttl_s=3, wait_s=1)  # type: ignore[arg-type]
    early, late = Lease(uuid.uuid4(), "early"), Lease(uuid.uuid4(), "late")

    async def go() -> None:
        keeper.hold(early)                 # expires at 1_003_000
        clock.advance(2)
        keeper.hold(late)                  # expires at 1_005_000
        outage.down = True
        clock.advance(1.5)                 # 1_003_500: past the early one's expiry only
        await keeper._renew_once([early, late])
        assert keeper.held == 1 and not keeper.forget(early)
        outage.down = False                # back: neither row is ours (none was taken here)
        await keeper._renew_once([late])
        assert keeper.held == 0

    try:
        asyncio.run(go())
    finally:
        db.dispose()
