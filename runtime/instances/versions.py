"""The machine versions this process keeps compiled: version id -> `LoadedVersion`, the one
version cache of the server, least recently used first out.

A loaded version holds a VM memory snapshot and a small pool of VMs (megabytes each), so the
bound on this cache is the bound on the memory versions take.
"""

from __future__ import annotations

import gzip
import threading
import uuid
from collections import OrderedDict

from runtime.engine import LoadedVersion, Runtime
from runtime.errors import BundleError
from runtime.store import Database
from runtime.store import versions as version_store


class Versions:
    def __init__(self, db: Database, runtime: Runtime, *, size: int):
        self._db = db
        self._runtime = runtime
        self._size = size
        self._loaded: OrderedDict[uuid.UUID, LoadedVersion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version_id: uuid.UUID) -> LoadedVersion:
        """The version, compiled; blocking (may read the database and compile)."""
        with self._lock:
            loaded = self._loaded.get(version_id)
            if loaded is not None:
                self._loaded.move_to_end(version_id)
                return loaded
        with self._db.read() as session:
            gzipped = version_store.bundle_of(session, version_id)
        loaded = self._runtime.compile(bundle_source(gzipped))
        with self._lock:
            self._loaded[version_id] = loaded
            while len(self._loaded) > self._size:
                self._loaded.popitem(last=False)
        return loaded


def bundle_source(gzipped: bytes) -> str:
    """A stored (gzipped) bundle as JavaScript source."""
    try:
        return gzip.decompress(gzipped).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError("the bundle is not UTF-8 text") from exc
