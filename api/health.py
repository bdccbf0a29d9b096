"""`/healthz` and `/readyz`, for load balancers and orchestrators.

`/healthz`: the process is alive and serving (nothing else is checked, so a database outage
does not get every node restarted at once). `/readyz`: this node can do its work now: the
database answers within `READY_TIMEOUT_S` and its schema is at the newest revision this code
knows (a node started ahead of a migration, or left behind by one, is not ready). Not ready is
a 503 in the usual JSON error shape, `code` saying why: `database-unavailable` or
`schema-outdated`.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from runtime.errors import UnavailableError
from runtime.store import Database

READY_TIMEOUT_S = 5.0


def install(app: FastAPI, db: Database) -> None:
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    async def readyz() -> dict[str, object]:
        try:
            current, detail = await asyncio.wait_for(asyncio.to_thread(db.schema_current),
                                                     READY_TIMEOUT_S)
        except TimeoutError as exc:
            raise UnavailableError(
                f"the database did not answer within {READY_TIMEOUT_S:g} s") from exc
        if not current:
            raise UnavailableError(detail, code="schema-outdated")
        return {"ok": True, "detail": detail}

    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)
