"""`allowRead` for realtime subscribers: each state a subscriber is sent passes the machine's
own authorizer, run in the sandbox off the event loop, with the subscriber's auth context.

A state goes to every subscriber of its instance at once, and they ask for their verdicts
together: the requests made for one state within one turn of the event loop go into the
sandbox in one call (`Instances.authorize_reads`: the state is restored once, then `allowRead`
runs per distinct context). A verdict is kept with the state, so subscribers that share an auth
context (one user's tabs) share it. One call per state per context instead cost about 0.65 ms of
server CPU per subscriber per state (bench/FIGURES.md).
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
    """What `runtime.instances.Instances.authorize_reads` offers."""

    async def authorize_reads(self, org_id: uuid.UUID, machine: str, instance: str, *,
                              version_id: uuid.UUID, state_json: str,
                              auth_contexts: list[dict[str, Any]]) -> list[Verdict]: ...


class Readers:
    def __init__(self, authorizer: Authorizer):
        self._authorizer = authorizer
        # Per state: the contexts asked about this turn of the loop, not yet in the sandbox.
        self._asked: dict[Change, dict[str, dict[str, Any]]] = {}
        self._calls: set[asyncio.Future[None]] = set()
        self.calls = 0   # sandbox calls made: for tests and benchmarks

    async def verdict(self, origin: Origin, change: Change, auth_context: dict[str, Any],
                      key: str | None = None) -> Verdict:
        """None if `allowRead` lets `auth_context` see `change` of the instance `origin`
        names (org, machine, instance), else the error to report. `key`: the context's
        canonical JSON, when the caller keeps it (see `context_key`)."""
        key = key if key is not None else context_key(auth_context)
        shared = change.verdicts.get(key)
        if shared is None:
            shared = change.verdicts[key] = asyncio.get_running_loop().create_future()
            asked = self._asked.get(change)
            if asked is None:
                asked = self._asked[change] = {}
                asyncio.get_running_loop().call_soon(self._call, origin, change)
            asked[key] = auth_context
        return await asyncio.shield(shared)

    def _call(self, origin: Origin, change: Change) -> None:
        call = asyncio.ensure_future(self._check(origin, change, self._asked.pop(change)))
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _check(self, origin: Origin, change: Change,
                     asked: dict[str, dict[str, Any]]) -> None:
        org_id, machine, instance = origin
        self.calls += 1
        try:
            verdicts: list[Verdict] = await self._authorizer.authorize_reads(
                org_id, machine, instance, version_id=change.version_id,
                state_json=change.state_json, auth_contexts=list(asked.values()))
        except BackstateError as exc:   # the call itself failed (a limit): so did each check
            verdicts = [exc] * len(asked)
        except Exception as exc:  # not the subscribers' fault: report it as the server's
            log.exception("realtime: authorizing state %d of instance %s failed", change.seq,
                          change.instance_id)
            verdicts = [BackstateError(f"authorizing the state failed: {type(exc).__name__}")
                        ] * len(asked)
        for key, verdict in zip(asked, verdicts, strict=True):
            change.verdicts[key].set_result(verdict)


def context_key(auth_context: dict[str, Any]) -> str:
    return json.dumps(auth_context, sort_keys=True, separators=(",", ":"))
