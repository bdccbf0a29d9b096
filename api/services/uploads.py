"""The code upload behind every `codeUploadUrl`, shared by machine versions and migrations.

Both are created in three steps, as State Backed's clients drive them: a provisional row and
where to upload its code (this server's `UPLOAD_PATH`, with a signed, expiring upload token in
the form fields, S3 presigned-POST style: the upload carries no bearer token); the upload,
stored gzipped within the size limits; and the finalize, which loads the code in the sandbox.
The token names what the code is for (`kind`) and which row receives it.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.crypto import ServerKeys
from runtime.clock import Clock
from runtime.errors import BundleError, InvalidRequestError, PayloadTooLargeError
from runtime.store import Database

UPLOAD_PATH = "/uploads/code"
_UPLOAD = "upload"
GZIP_MAGIC = b"\x1f\x8b"

# What an upload is for -> how its gzipped code is stored (session, row id, gzipped code).
Store = Callable[[Session, uuid.UUID, bytes], None]


@dataclass(frozen=True)
class Provisional:
    signed_id: str
    upload_url: str
    upload_fields: dict[str, str]


@dataclass(frozen=True)
class Limits:
    gzip_bytes: int
    raw_bytes: int
    upload_ttl_s: int


class CodeUploads:
    def __init__(self, db: Database, clock: Clock, keys: ServerKeys, *, limits: Limits,
                 stores: dict[str, Store]):
        self._db = db
        self._clock = clock
        self._keys = keys
        self._limits = limits
        self._stores = stores

    def provisional(self, kind: str, row_id: uuid.UUID, signed_id: str,
                    base_url: str) -> Provisional:
        """Where the code of `row_id` (a `kind`) is to be uploaded, and its signed id."""
        assert kind in self._stores
        expires = self._clock.now_ms() // 1000 + self._limits.upload_ttl_s
        token = self._keys.seal_claims(_UPLOAD, {"k": kind, "id": row_id.hex, "exp": expires})
        return Provisional(
            signed_id=signed_id,
            upload_url=base_url.rstrip("/") + UPLOAD_PATH,
            upload_fields={"token": token},
        )

    def receive(self, token: str, content: bytes, *, gzipped: bool) -> None:
        """Store uploaded code (plain or gzip) where its token says, within the size limits."""
        claims = self._keys.open_claims(_UPLOAD, token)
        store = self._stores.get(str(claims.get("k"))) if claims is not None else None
        if claims is None or store is None or not isinstance(claims.get("id"), str):
            raise InvalidRequestError("upload token is not valid", parameter="token")
        if int(claims.get("exp", 0)) < self._clock.now_ms() // 1000:
            raise InvalidRequestError("upload token expired", parameter="token")
        stored = self._compressed(content, gzipped=gzipped or content[:2] == GZIP_MAGIC)
        with self._db.transaction() as session:
            store(session, uuid.UUID(hex=claims["id"]), stored)

    def _compressed(self, content: bytes, *, gzipped: bool) -> bytes:
        """`content` as gzip bytes, within both limits (gunzipping at most one byte too many,
        so a gzip bomb costs nothing)."""
        if gzipped:
            _check(len(content), self._limits.gzip_bytes, "gzipped code")
            raw = _gunzip(content, self._limits.raw_bytes + 1)
            _check(len(raw), self._limits.raw_bytes, "code")
            return content
        _check(len(content), self._limits.raw_bytes, "code")
        packed = gzip.compress(content, compresslevel=6, mtime=0)
        _check(len(packed), self._limits.gzip_bytes, "gzipped code")
        return packed


def _check(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise PayloadTooLargeError(
            f"{what} is larger than the limit of {limit} bytes", parameter="file"
        )


def _gunzip(content: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(content, max_bytes)
    except zlib.error as exc:
        raise BundleError("the uploaded file is not valid gzip") from exc
    if len(raw) < max_bytes and not inflater.eof:
        raise BundleError("the uploaded gzip stream is truncated")
    return raw
