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
from collections.abc import Callable

from runtime.engine import LoadedVersion, Runtime
from runtime.errors import BundleError
from runtime.store import Database
from runtime.store import versions as version_store


class Compiled:
    """id -> `LoadedVersion`, least recently used first out, each loaded by `load` (blocking:
    it may read the database and compile) on its first use. Versions and migrations (see
    upgrades.py) are both kept in one of these."""

    def __init__(self, load: Callable[[uuid.UUID], LoadedVersion], *, size: int):
        self._load = load
        self._size = size
        self._loaded: OrderedDict[uuid.UUID, LoadedVersion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: uuid.UUID) -> LoadedVersion:
        with self._lock:
            loaded = self._loaded.get(key)
            if loaded is not None:
                self._loaded.move_to_end(key)
                return loaded
        loaded = self._load(key)
        with self._lock:
            self._loaded[key] = loaded
            while len(self._loaded) > self._size:
                self._loaded.popitem(last=False)
        return loaded


class Versions(Compiled):
    def __init__(self, db: Database, runtime: Runtime, *, size: int):
        def load(version_id: uuid.UUID) -> LoadedVersion:
            with db.read() as session:
                gzipped = version_store.bundle_of(session, version_id)
            return runtime.compile(bundle_source(gzipped))

        super().__init__(load, size=size)


def bundle_source(gzipped: bytes) -> str:
    """A stored (gzipped) bundle as JavaScript source."""
    try:
        return gzip.decompress(gzipped).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError("the bundle is not UTF-8 text") from exc
