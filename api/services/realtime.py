"""The realtime socket's service: who the caller is (a stale token is accepted within the
grace period), and the runtime's hub, `allowRead` and change-log pruning, started and stopped
with the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from starlette.websockets import WebSocket

from api.auth import Authenticator, Credentials, Principal
from api.realtime.connection import Connection, Limits
from api.settings import Settings
from runtime.errors import AuthError, BackstateError
from runtime.instances import Instances
from runtime.realtime import ChangeLogPruner, Readers, build_hub
from runtime.realtime.changelog import check_logged
from runtime.store import Database

ORG_PARAM = "x-statebacked-org-id"


class RealtimeService:
    def __init__(self, settings: Settings, db: Database, core: Instances, auth: Authenticator):
        self._db = db
        self.hub = build_hub(db, core.feed, poll_s=settings.rt_poll_s)
        self.readers = Readers(core)
        self._pruner = ChangeLogPruner(db, settings.rt_change_log_s)
        self._pruning: asyncio.Task[None] | None = None
        self._auth = auth
        self._grace_s = settings.rt_token_grace_s
        self.limits = Limits(
            idle_s=settings.rt_idle_s,
            max_subscriptions=settings.rt_max_subscriptions,
            max_frame_bytes=settings.rt_max_frame_bytes,
            queue=settings.rt_queue,
        )

    async def start(self) -> None:
        await asyncio.to_thread(check_logged, self._db)
        await self.hub.start()
        self._pruning = asyncio.ensure_future(self._pruner.run())

    async def aclose(self) -> None:
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruning
        await self.hub.aclose()

    async def caller(self, params: Mapping[str, str]) -> Principal | BackstateError:
        """The caller behind the socket's `?token=` (and org), or why there is none: reported
        on each subscription, never by refusing the upgrade."""
        token = params.get("token")
        if not token:
            return AuthError("the realtime socket needs a token: /rt?token=<token>")
        creds = Credentials(authorization=f"Bearer {token}", org_id=params.get(ORG_PARAM))
        try:
            return await asyncio.to_thread(self._auth.authenticate_stale, creds, self._grace_s)
        except BackstateError as exc:
            return exc

    def connection(self, socket: WebSocket, caller: Principal | BackstateError) -> Connection:
        return Connection(socket, caller, self.hub, self.readers, self.limits)
