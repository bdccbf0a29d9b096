"""Machine logs: what machines print (console output of actions, guards, services and
authorizers) and the runtime's own lines about them, kept for `GET /logs`.

`StepLogs` (`steps.py`) is how the instance core reports each call into the sandbox; a
`LogWriter` (`writer.py`) stores the entries (`entries.py`) off the hot path and keeps the table
bounded. The API reads them with `runtime/store/logs.py`.
"""

from runtime.logs.entries import LogEntry, LogOrigin
from runtime.logs.steps import StepLogs
from runtime.logs.writer import LogWriter, Retention

__all__ = ["LogEntry", "LogOrigin", "LogWriter", "Retention", "StepLogs"]
