"""Issuers' public keys (JWKS), fetched over HTTPS and kept per process.

`JwksFetcher` is the network seam: HTTPS only (a `jwksUrl` is refused otherwise, at upsert and
here), the system's trusted CAs (certifi's) plus, if `ca_file` is set, the CAs in that PEM file
(`BACKSTATE_JWKS_CA_FILE`: an issuer behind a private CA, or the tests' local HTTPS issuer). No
plain-http exception exists, for tests or anyone else. Redirects are not followed, a response
is read up to `max_bytes`, and a fetch gives up after `timeout_s`.

`JwksCache` keeps each URL's keys for `max_age_s`, and fetches again early when a token names a
`kid` it does not know (the issuer rotated its keys). Every fetch of a URL — first, stale,
unknown kid, or after a failure — waits `min_refresh_s` after the previous attempt, so a flood
of tokens with made-up `kid`s costs the issuer one request per interval per process; one
request at a time per URL, the others wait for its answer. Keys fetched earlier keep serving
while an issuer is down.

Keys are parsed by PyJWT (`PyJWK`), for the one algorithm the token names: a JWK whose type,
curve, `alg` or `use` does not fit that algorithm is never used for it, and symmetric (`oct`)
JWKs are ignored altogether: a shared secret is never taken from a URL.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
import jwt

from runtime.errors import AuthError, InvalidRequestError

JWKS_UNAVAILABLE = "jwks-unavailable"

# The JWK key type (and curves) each asymmetric algorithm may use.
_KTY: dict[str, tuple[str, frozenset[str]]] = {
    **{f"RS{n}": ("RSA", frozenset()) for n in (256, 384, 512)},
    **{f"PS{n}": ("RSA", frozenset()) for n in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
ASYMMETRIC_ALGS = frozenset(_KTY)


class JwksError(Exception):
    """A JWKS could not be had: unreachable, refused, or not a JWKS."""


def check_url(url: str, *, parameter: str = "jwksUrl") -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidRequestError(f"{parameter} must be an https:// URL", parameter=parameter)


class JwksFetcher:
    """One GET of a JWKS document (blocking)."""

    def __init__(self, *, timeout_s: float, max_bytes: int, ca_file: str | None = None):
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._tls = ssl.create_default_context(cafile=certifi.where())
        if ca_file:
            self._tls.load_verify_locations(cafile=ca_file)

    def fetch(self, url: str) -> dict[str, Any]:
        if urlsplit(url).scheme != "https":
            raise JwksError("the JWKS URL is not https")
        try:
            with (
                httpx.Client(verify=self._tls, timeout=self._timeout_s) as client,
                client.stream("GET", url, headers={"accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise JwksError(f"the JWKS URL answered HTTP {response.status_code}")
                body = self._read(response)
        except httpx.HTTPError as exc:
            raise JwksError(f"the JWKS URL could not be fetched ({type(exc).__name__})") from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise JwksError("the JWKS URL did not answer JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksError('the JWKS URL did not answer a JWKS (an object with a "keys" list)')
        return document

    def _read(self, response: httpx.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise JwksError(f"the JWKS is larger than {self._max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    keys: list[dict[str, Any]] | None = None
    fetched_at: float = 0.0
    attempted_at: float | None = None
    error: str | None = None


class JwksCache:
    def __init__(
        self,
        fetcher: JwksFetcher,
        *,
        max_age_s: float,
        min_refresh_s: float,
        now: Callable[[], float] = time.monotonic,
    ):
        self._fetcher = fetcher
        self._max_age_s = max_age_s
        self._min_refresh_s = min_refresh_s
        self._now = now
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def key_for(self, url: str, kid: str | None, alg: str) -> jwt.PyJWK:
        """The issuer's key for a token with this `kid` and `alg`, or `AuthError`."""
        entry = self._entry(url)
        with entry.lock:
            if entry.keys is None or self._now() - entry.fetched_at >= self._max_age_s:
                self._refresh(entry, url)
            key = _find(entry.keys or [], kid, alg)
            if key is None and entry.keys is not None and self._refresh(entry, url):
                key = _find(entry.keys, kid, alg)
            keys, error = entry.keys, entry.error
        if keys is None:
            raise AuthError(
                f"the identity provider's JWKS is unavailable: {error}", code=JWKS_UNAVAILABLE
            )
        if key is None:
            named = f"kid {kid!r}" if kid is not None else "no kid"
            raise AuthError(
                f"the identity provider's JWKS has no {alg} key for a token with {named}",
                code="invalid-subject-token",
            )
        return key

    def _entry(self, url: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(url, _Entry())

    def _refresh(self, entry: _Entry, url: str) -> bool:
        """Fetch `url` again unless the last attempt was too recent; whether it was fetched."""
        now = self._now()
        if entry.attempted_at is not None and now - entry.attempted_at < self._min_refresh_s:
            return False
        entry.attempted_at = now
        try:
            document = self._fetcher.fetch(url)
        except JwksError as exc:
            entry.error = str(exc)
            return False
        entry.keys = [k for k in document["keys"] if isinstance(k, dict)]
        entry.fetched_at, entry.error = self._now(), None
        return True


def _find(keys: list[dict[str, Any]], kid: str | None, alg: str) -> jwt.PyJWK | None:
    """The key for `alg` named `kid`; without a `kid`, the only key that fits `alg`."""
    fitting = [k for k in keys if _fits(k, alg) and (kid is None or k.get("kid") == kid)]
    if len(fitting) != 1:
        return None
    try:
        return jwt.PyJWK(fitting[0], algorithm=alg)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None


def _fits(jwk: dict[str, Any], alg: str) -> bool:
    if alg not in _KTY:
        return False  # HMAC: a shared key never comes from a URL
    kty, curves = _KTY[alg]
    if jwk.get("kty") != kty or jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
        return False
    return not curves or jwk.get("crv") in curves
