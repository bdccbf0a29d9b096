"""The server's log lines: uvicorn's text format (the default) or one JSON object per line.

`BACKSTATE_LOG_FORMAT=json` turns every logger the server writes to (uvicorn's error and access
logs, `backstate.*`) into JSON lines on stderr, each with the request id and the instance it is
about where known (`runtime/logcontext.py`):

    {"time": "2026-12-04T17:30:00.123Z", "level": "INFO", "logger": "uvicorn.access",
     "message": "127.0.0.1:5042 - \\"POST /machines/m/i/a/events HTTP/1.1\\" 200",
     "request_id": "5f0c9a1e2b3d4c6f", "org": "2f4c...", "machine": "m", "instance": "a",
     "method": "POST", "path": "/machines/m/i/a/events", "status": 200}

The request id is the request's `X-Request-Id` header when it has a sensible one (a proxy's),
else one made up here, and every response carries it back in `X-Request-Id`.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from typing import Any, Literal

from runtime import logcontext

LogFormat = Literal["text", "json"]
REQUEST_ID_HEADER = b"x-request-id"
_MAX_REQUEST_ID = 128
# Ids made here: this process's random half, then a count (cheaper than random bytes per
# request, and as unique: a worker's restart draws a new half).
_PROCESS_PART = secrets.token_hex(4)
_COUNT = itertools.count()


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's own id if it sent a printable one of reasonable length, else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if 0 < len(value) <= _MAX_REQUEST_ID and _printable(value):
                return value.decode("ascii")
            break
    return f"{_PROCESS_PART}{next(_COUNT) & 0xFFFFFFFF:08x}"


def _printable(value: bytes) -> bool:
    return all(0x21 <= byte < 0x7F and byte != 0x22 for byte in value)  # no space, no quote


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the log context of the task or thread that wrote it."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = logcontext.REQUEST_ID.get()
        if request is not None:
            line["request_id"] = request
        instance = logcontext.INSTANCE.get()
        if isinstance(instance, tuple) and len(instance) == 3:
            line["org"], line["machine"], line["instance"] = (str(part) for part in instance)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) \
                and len(record.args) == 5:
            _client, method, path, _http, status = record.args
            line.update(method=method, path=path, status=status)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def log_config(log_format: LogFormat, level: str) -> dict[str, Any] | None:
    """The `logging.config.dictConfig` uvicorn sets up in each process (`log_config`), or None
    for uvicorn's own text format. JSON: every logger through one stderr handler."""
    if log_format == "text":
        return None
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
