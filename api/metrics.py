"""`/metrics`: what `runtime/metrics.py` counts, in Prometheus' text format.

With several worker processes (`backstate serve --workers N`) the command line gives them a
folder of their own for prometheus-client's multiprocess mode (`multiprocess_dir`), created
before the workers start and removed when the server stops: each worker writes its values to
memory-mapped files there, and whichever worker answers a scrape adds up every worker's files,
so every scrape sees the whole server. A worker that dies keeps its counts in the sums (totals
never go backwards) and loses its gauges (`worker_died`). One process alone keeps its values
in memory and also reports Python's own process and garbage-collector metrics.

The metrics carry no org, machine or instance names, only counts and timings of the server as
a whole. `/metrics` is open unless `BACKSTATE_METRICS_TOKEN` is set, in which case a scrape
needs `Authorization: Bearer <token>` (Prometheus' `authorization` or `bearer_token` option).
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from runtime.errors import AuthError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger("backstate.api")


@contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A fresh folder for the workers' metric files, named in the environment the workers
    inherit (it must be set before a worker imports prometheus-client), removed afterwards.
    Always a new one: files left by an earlier run would add its counts to this one's."""
    if os.environ.get(MULTIPROC_ENV):
        log.info("%s is set; the workers use a folder of their own instead", MULTIPROC_ENV)
    previous = os.environ.get(MULTIPROC_ENV)
    folder = tempfile.mkdtemp(prefix="backstate-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def worker_died(pid: int) -> None:
    """Drop a dead worker's gauges from the sums (its counters and histograms stay)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def scrape(token: str | None) -> Callable[[Request], Response]:
    """The `/metrics` route (a plain function: FastAPI runs it on a thread, as reading the
    workers' files blocks)."""

    def metrics(request: Request) -> Response:
        if token is not None and not _authorized(request, token):
            raise AuthError("/metrics needs the metrics token: Authorization: Bearer <token>")
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def render() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())
