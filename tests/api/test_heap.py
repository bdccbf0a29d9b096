"""The server's heap at start is out of the collector's sight; later garbage is collected."""

from __future__ import annotations

import gc
import weakref

from tests.conftest import Server


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector can free it


def test_a_started_server_freezes_its_heap_and_still_collects_later_cycles(
    server: Server,
) -> None:
    assert gc.get_freeze_count() > 0  # the app, its services and modules: frozen at start
    assert gc.isenabled()
    node = _Node()
    gone = weakref.ref(node)
    del node
    gc.collect()
    assert gone() is None
