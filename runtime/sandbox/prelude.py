"""The prelude: the web-standard globals of the sandbox and the `__bs` driver protocol, as one
script built from the parts in `js_shims/prelude/`.

QuickJS-NG core has no qjs-libc: no console, timers, fetch, TextEncoder, URL... The prelude
supplies them, polyfilling only what the engine lacks (quickjs-ng 0.17 already has
queueMicrotask, atob/btoa, DOMException and performance; the fallbacks exist for an engine that
does not). It is evaluated once per process into the VM that becomes the memory snapshot every
event's VM is cloned from, so its size costs nothing per event. What needs the outside world
goes through the Python driver: synchronous requests (random bytes, digests, HMAC) through
`__host_call`, which the first part captures and deletes from globalThis, and asynchronous work
(timers, fetch) and console output through queues the driver drains via `globalThis.__bs`.

Each part (`NN-name.js`, evaluated in name order) owns one concept. The parts share private
state (the captured bridge, the queues, helpers such as `viewBytes`), so they are joined inside
one strict-mode function scope: a top-level declaration of one part is visible to the parts
after it, and to nothing else; only what a part puts on globalThis escapes.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["prelude_source"]


def prelude_source(js_dir: Path) -> str:
    """The prelude as one script: the parts in `js_dir / "prelude"`, in name order, in one scope."""
    parts = sorted((js_dir / "prelude").glob("*.js"))
    if not parts:
        raise FileNotFoundError(f"no prelude parts (*.js) in {js_dir / 'prelude'}")
    # A marker before each part maps a line of "prelude.js" in a stack trace back to its file.
    body = "".join(f"// prelude/{part.name}\n{part.read_text().rstrip()}\n\n" for part in parts)
    return f'(() => {{\n"use strict";\n\n{body}}})();\n'
