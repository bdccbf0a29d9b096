"""Version id -> loaded bundle, per process (the runtime compiles; this finds the code)."""

from __future__ import annotations

import gzip
import threading
import uuid
from collections import OrderedDict
from typing import Any

from api.services.runtime_port import StepRuntime
from runtime.errors import BundleError
from runtime.store import Database
from runtime.store import versions as version_store


class Bundles:
    def __init__(self, db: Database, runtime: StepRuntime, *, size: int = 256):
        self._db = db
        self._runtime = runtime
        self._size = size
        self._loaded: OrderedDict[uuid.UUID, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version_id: uuid.UUID) -> Any:
        """The runtime's handle for a version; blocking (may read the DB and compile)."""
        with self._lock:
            if version_id in self._loaded:
                self._loaded.move_to_end(version_id)
                return self._loaded[version_id]
        with self._db.transaction() as session:
            gzipped = version_store.bundle_of(session, version_id)
        handle = self._runtime.compile(source_of(gzipped))
        with self._lock:
            self._loaded[version_id] = handle
            while len(self._loaded) > self._size:
                self._loaded.popitem(last=False)
        return handle


def source_of(gzipped: bytes) -> str:
    try:
        return gzip.decompress(gzipped).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError("the bundle is not UTF-8 text") from exc
