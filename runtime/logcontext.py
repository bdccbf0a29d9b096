"""What a log line is about: the request and the instance, where known (`api/logs.py` writes
them on each line of the JSON log format).

Context variables, so each request's task (and the step threads it hands work to,
`runtime/instances/threads.py`) sees its own: the edge sets the request id as a request
arrives (`api/app.py`), the instance's mailbox sets the instance as work for it is queued
(`runtime/instances/mailbox.py`). Events of several requests that run as one batch log under
the instance and the request whose event started the batch's queue.
"""

from __future__ import annotations

from collections.abc import Hashable
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("backstate_request_id", default=None)
# The mailbox key as it is, (org id, machine, instance name): formatted only when a line is
# written, so setting it costs nothing on the hot path.
INSTANCE: ContextVar[Hashable | None] = ContextVar("backstate_instance", default=None)
