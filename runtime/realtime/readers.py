"""`allowRead` for realtime subscribers: each state a subscriber is sent passes the machine's
own authorizer, run in the sandbox off the event loop, with the subscriber's auth context.

Subscribers of one instance often share an auth context (one user's tabs, a shared dashboard):
the verdict on a state is computed once per distinct context and shared by every subscriber in
the process (it is cached on the state, which every subscriber shares).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Protocol

from runtime.errors import BackstateError
from runtime.realtime.change import Change, Verdict

log = logging.getLogger("backstate.realtime")
Origin = tuple[uuid.UUID, str, str]   # org, machine, instance


class Authorizer(Protocol):
    """What `runtime.instances.Instances.authorize_read` offers."""

    async def authorize_read(self, org_id: uuid.UUID, machine: str, instance: str, *,
                             version_id: uuid.UUID, state_json: str,
                             auth_context: dict[str, Any]) -> None: ...


class Readers:
    def __init__(self, authorizer: Authorizer):
        self._authorizer = authorizer

    async def verdict(self, origin: Origin, change: Change, auth_context: dict[str, Any],
                      key: str | None = None) -> Verdict:
        """None if `allowRead` lets `auth_context` see `change` of the instance `origin`
        names (org, machine, instance), else the error to report. `key`: the context's
        canonical JSON, when the caller keeps it (see `context_key`)."""
        key = key if key is not None else context_key(auth_context)
        shared = change.verdicts.get(key)
        if shared is None:
            shared = change.verdicts[key] = asyncio.ensure_future(
                self._check(origin, change, auth_context))
        return await asyncio.shield(shared)

    async def _check(self, origin: Origin, change: Change,
                     auth_context: dict[str, Any]) -> Verdict:
        org_id, machine, instance = origin
        try:
            await self._authorizer.authorize_read(
                org_id, machine, instance, version_id=change.version_id,
                state_json=change.state_json, auth_context=auth_context)
        except BackstateError as exc:
            return exc
        except Exception as exc:  # not the subscriber's fault: report it as the server's
            log.exception("realtime: authorizing state %d of instance %s failed", change.seq,
                          change.instance_id)
            return BackstateError(f"authorizing the state failed: {type(exc).__name__}")
        return None


def context_key(auth_context: dict[str, Any]) -> str:
    return json.dumps(auth_context, sort_keys=True, separators=(",", ":"))
