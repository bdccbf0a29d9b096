"""The app factory: everything a server needs is built here, from `Settings`, never at import.

app = create_app(Settings(database_url=...))            # the real runtime
app = create_app(settings, runtime=..., clock=...)      # tests may swap the seams
"""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import dashboard, errors, health, logs, openapi
from api import metrics as metrics_route
from api.bootstrap import open_database, server_secret
from api.fastpath import FastPath
from api.middleware import BodyLimit, CatchAll, CollapseSlashes
from api.routes import ROUTERS, members
from api.routes.migrations import MIGRATIONS_PATH
from api.services import build_services
from api.services.uploads import UPLOAD_PATH
from api.settings import Settings
from runtime import logcontext
from runtime.clock import Clock, SystemClock
from runtime.store import Database

if TYPE_CHECKING:
    from runtime.engine import Runtime  # imported lazily: building one compiles the sandbox

CORS_HEADERS = ["authorization", "content-type", "x-statebacked-org-id", "x-statebacked-act"]


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """A ready app: the schema is migrated and the services built before this returns."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    db = open_database(settings)
    own_runtime = build_runtime(settings, clock) if runtime is None else None
    runtime = runtime or own_runtime
    assert runtime is not None
    services = build_services(settings, db, server_secret(settings, db), runtime, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        services.logs.start()
        await services.core.start(timers=settings.timers_enabled)
        await services.realtime.start()
        _freeze_startup_heap()
        try:
            yield
        finally:
            await services.realtime.aclose()
            await services.core.aclose()
            services.logs.close()
            if own_runtime is not None:   # an injected runtime belongs to its owner
                own_runtime.close()
            await _connections_returned(db)
            db.dispose()

    app = _Backstate(title="backstate", version="0.1.0", lifespan=lifespan)
    app.state.services = services
    app.front = FastPath(
        functools.partial(FastAPI.__call__, app), lambda: services,
        body_limit=settings.max_body_bytes,
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    health.install(app, db)
    token = None if settings.metrics_token is None else settings.metrics_token.get_secret_value()
    app.add_api_route("/metrics", metrics_route.scrape(token),
                      methods=["GET"], include_in_schema=False)
    dashboard.mount(app, settings)
    members.add_invitations(app)
    openapi.install(app)
    _add_middleware(app, settings)
    return app


class _Backstate(FastAPI):
    """FastAPI with the hot routes' fast path (`api.fastpath`: events and creations) in front
    of everything it does per request: its telemetry check (paid even with nothing configured),
    routing, and the whole middleware stack, errors and CORS included. The fast path answers only
    requests that need none of them and hands every other one to FastAPI unchanged."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Each request runs in a task of its own: set here, the id is this request's alone.
        request_id = logs.request_id(scope["headers"])
        logcontext.REQUEST_ID.set(request_id)
        header = (logs.REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if self.front is not None:
            await self.front(scope, receive, send_with_id)
        else:
            await super().__call__(scope, receive, send_with_id)


@functools.cache  # once per process: its first app's start
def _freeze_startup_heap() -> None:
    """Take what exists when the server starts out of the garbage collector's sight.

    Modules, the app and services, SQLAlchemy's and pydantic's structures, the sandbox engine:
    they live as long as the process, yet every full (generation 2) collection walked all of
    them again, pausing the whole process for tens of milliseconds under load (the worst of the
    event route's tail latency; bench/FIGURES.md). Frozen, they are skipped; whatever is
    allocated later (requests, steps, cached versions) is collected as before. Garbage is
    collected first, so none of it is frozen with them."""
    gc.collect()
    gc.freeze()


def build_runtime(settings: Settings, clock: Clock) -> Runtime:
    from runtime.engine import Runtime, RuntimeLimits
    from runtime.sandbox.fetch import EgressPolicy, Fetcher

    limits = RuntimeLimits(
        memory_bytes=settings.memory_bytes,
        window_s=settings.window_s,
        slice_s=settings.slice_s,
        event_bytes=settings.max_event_bytes,
        warm=settings.warm_vms,
    )
    policy = EgressPolicy(
        allow_loopback=settings.fetch_allow_loopback,
        allow_private=settings.fetch_allow_private,
        allowed_hosts=frozenset(h.lower() for h in settings.fetch_allowed_hosts),
        timeout_s=settings.fetch_timeout_s,
    )
    return Runtime(limits, clock=clock, fetcher=Fetcher(policy))


async def _connections_returned(db: Database, timeout_s: float = 5.0) -> None:
    """Database work still running in a thread at shutdown (a lease release, a delivery's
    last commit) keeps its connection until it finishes; disposing the pool first would
    abandon that connection instead of closing it."""
    pool = db.engine.pool
    if not isinstance(pool, QueuePool):
        return
    deadline = asyncio.get_running_loop().time() + timeout_s
    while pool.checkedout() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    def limit_for(path: str) -> int:
        if path == UPLOAD_PATH:
            return settings.max_upload_body_bytes
        if MIGRATIONS_PATH.fullmatch(path):
            return settings.max_migration_body_bytes
        return settings.max_body_bytes

    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(CollapseSlashes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=CORS_HEADERS,
        max_age=86400,
    )
