"""Machine versions, created in three steps, as State Backed's clients drive them:

1. `provisional` makes a provisional version and returns its *signed* id plus an upload URL
   on this server with a signed, expiring upload token in the form fields;
2. `upload` (no bearer token: the form's token authorizes it) stores the code gzipped;
3. `finalize` checks the signed id, loads the code in the sandbox, and makes it final (and
   current, if asked).
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from dataclasses import dataclass

from api import ids
from api.crypto import ServerKeys
from runtime.clock import Clock
from runtime.engine import Runtime
from runtime.errors import BundleError, InvalidRequestError, NotFoundError, PayloadTooLargeError
from runtime.instances.versions import bundle_source
from runtime.store import Database
from runtime.store import machines as machine_store
from runtime.store import versions as version_store
from runtime.store.clock import to_datetime
from runtime.store.models import MachineVersion

UPLOAD_PATH = "/uploads/code"
_SIGNED_ID = "machine-version"
_UPLOAD = "upload"
GZIP_MAGIC = b"\x1f\x8b"


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


class VersionService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keys: ServerKeys,
        runtime: Runtime,
        *,
        limits: Limits,
        page_size: int,
    ):
        self._db = db
        self._clock = clock
        self._keys = keys
        self._runtime = runtime
        self._limits = limits
        self._page_size = page_size

    def provisional(self, org_id: uuid.UUID, machine_name: str, base_url: str) -> Provisional:
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            version = version_store.create_provisional(
                session, machine, now=to_datetime(self._clock.now_ms())
            )
        pretty = ids.encode("ver", version.id)
        signature = self._keys.sign(_SIGNED_ID, f"{machine.id}:{version.id}")
        expires = self._clock.now_ms() // 1000 + self._limits.upload_ttl_s
        token = self._keys.seal_claims(_UPLOAD, {"v": version.id.hex, "exp": expires})
        return Provisional(
            signed_id=f"{pretty}.{signature}",
            upload_url=base_url.rstrip("/") + UPLOAD_PATH,
            upload_fields={"token": token},
        )

    def upload(self, token: str, content: bytes, *, gzipped: bool) -> None:
        """Store uploaded code (plain or gzip), enforcing the size limits."""
        claims = self._keys.open_claims(_UPLOAD, token)
        if claims is None or not isinstance(claims.get("v"), str):
            raise InvalidRequestError("upload token is not valid", parameter="token")
        if int(claims.get("exp", 0)) < self._clock.now_ms() // 1000:
            raise InvalidRequestError("upload token expired", parameter="token")
        stored = self._compressed(content, gzipped=gzipped or content[:2] == GZIP_MAGIC)
        with self._db.transaction() as session:
            version_store.store_bundle(session, uuid.UUID(hex=claims["v"]), stored)

    def finalize(
        self,
        org_id: uuid.UUID,
        machine_name: str,
        signed_id: str,
        *,
        client_info: str | None,
        make_current: bool,
    ) -> str:
        """Validate the uploaded code and make the version final; its pretty id."""
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            version_id = self._verify_signed_id(machine.id, signed_id)
            version = version_store.get(session, version_id)
            if version.machine_id != machine.id:
                raise NotFoundError("machine version not found", parameter="machineVersionId")
            bundle = version.bundle
        if bundle is None:
            raise InvalidRequestError(
                "no code was uploaded for this version", parameter="machineVersionId"
            )
        definition = self._runtime.describe_bundle(bundle_source(bundle))  # validates it too
        with self._db.transaction() as session:
            version = version_store.get(session, version_id)
            version.status = version_store.FINAL
            version.definition = definition
            if client_info is not None:
                version.client_info = client_info
            if make_current:
                machine_store.get(session, org_id, machine_name).current_version_id = version_id
        return ids.encode("ver", version_id)

    def list_page(
        self, org_id: uuid.UUID, machine_name: str, cursor: str | None
    ) -> tuple[list[MachineVersion], str | None]:
        with self._db.transaction() as session:
            machine = machine_store.get(session, org_id, machine_name)
            return version_store.list_page(session, machine, cursor=cursor, limit=self._page_size)

    def _verify_signed_id(self, machine_id: uuid.UUID, signed_id: str) -> uuid.UUID:
        pretty, _, signature = signed_id.partition(".")
        version_id = ids.decode("ver", pretty)
        if version_id is None or not self._keys.verify(
            _SIGNED_ID, f"{machine_id}:{version_id}", signature
        ):
            raise NotFoundError("machine version not found", parameter="machineVersionId")
        return version_id

    def _compressed(self, content: bytes, *, gzipped: bool) -> bytes:
        """`content` as gzip bytes, within both limits (gunzipping at most one byte too many,
        so a gzip bomb costs nothing)."""
        if gzipped:
            self._check(len(content), self._limits.gzip_bytes, "gzipped code")
            raw = _gunzip(content, self._limits.raw_bytes + 1)
            self._check(len(raw), self._limits.raw_bytes, "code")
            return content
        self._check(len(content), self._limits.raw_bytes, "code")
        packed = gzip.compress(content, compresslevel=6, mtime=0)
        self._check(len(packed), self._limits.gzip_bytes, "gzipped code")
        return packed

    @staticmethod
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
