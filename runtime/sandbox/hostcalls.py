"""The Python side of the VM's synchronous host bridge.

The prelude (`js_shims/prelude/`) calls `__host_call(json) -> json` for what JavaScript cannot
do well or safely by itself inside the sandbox:

    {"op": "random", "n": 16}                              -> {"b64": ...}   n bytes from `secrets`
    {"op": "digest", "alg": "SHA-256", "data": b64}        -> {"b64": ...}
    {"op": "hmac", "alg": "SHA-256", "key": b64, "data": b64} -> {"b64": ...}

`handle` is pure and stateless, so one function serves every VM on every thread. The request
comes from untrusted code: it is validated, sizes are capped, and `handle` never raises. Any
failure is answered as `{"error": message}`, which the prelude rethrows inside the VM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

from runtime.errors import HostCallError

MAX_RANDOM_BYTES = 65536  # the WebCrypto quota for one getRandomValues call
MAX_DATA_BYTES = 10 * 1024 * 1024
# Longest base64 text that can decode to MAX_DATA_BYTES: checked before decoding anything.
_MAX_B64_CHARS = (MAX_DATA_BYTES + 2) // 3 * 4

_HASHES = {"SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}

Request = dict[str, Any]


def handle(request: str) -> str:
    """Answer one host call. Never raises: errors become {"error": message}."""
    try:
        req = json.loads(request)
    except ValueError:
        return _error("host call request is not JSON")
    if not isinstance(req, dict):
        return _error("host call request must be a JSON object")
    op = req.get("op")
    handler = _OPS.get(op) if isinstance(op, str) else None
    if handler is None:
        return _error(f"unknown host call op {op!r}")
    try:
        return json.dumps({"b64": _b64encode(handler(req))})
    except HostCallError as e:
        return _error(e.message)
    except Exception:  # a bug here must not leak host internals into the guest
        return _error(f"host call {op!r} failed")


def _random(req: Request) -> bytes:
    n = req.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_RANDOM_BYTES:
        raise HostCallError(f"random: n must be an integer from 0 to {MAX_RANDOM_BYTES}")
    return secrets.token_bytes(n)


def _digest(req: Request) -> bytes:
    return hashlib.new(_hash_name(req), _data(req, "data")).digest()


def _hmac(req: Request) -> bytes:
    return hmac.new(_data(req, "key"), _data(req, "data"), _hash_name(req)).digest()


def _hash_name(req: Request) -> str:
    alg = req.get("alg")
    name = _HASHES.get(alg) if isinstance(alg, str) else None
    if name is None:
        raise HostCallError(f"unsupported hash {alg!r}; use one of {', '.join(_HASHES)}")
    return name


def _data(req: Request, field: str) -> bytes:
    text = req.get(field)
    if not isinstance(text, str):
        raise HostCallError(f"{field} must be a base64 string")
    if len(text) > _MAX_B64_CHARS:
        raise HostCallError(f"{field} is larger than {MAX_DATA_BYTES} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise HostCallError(f"{field} is not valid base64") from e
    if len(data) > MAX_DATA_BYTES:
        raise HostCallError(f"{field} is larger than {MAX_DATA_BYTES} bytes")
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _error(message: str) -> str:
    return json.dumps({"error": message})


_OPS: dict[str, Callable[[Request], bytes]] = {
    "random": _random,
    "digest": _digest,
    "hmac": _hmac,
}
