"""Machines, their versions and the migrations between versions.

Versions and migrations are made in three steps, as State Backed does it: a provisional create
that reserves a signed id and returns where to upload the code, the upload itself (a multipart
POST to that signed URL, no bearer token: S3 presigned-POST style), and a finalize. `create`
does all three, gzipping the code as `smply` does.
"""

from __future__ import annotations

import base64
import gzip as gzip_lib
import hashlib
import hmac
from typing import Literal

from backstate_client._errors import ApiError
from backstate_client._flow import Flow, Multipart, Request, call, cursor_query, failure, path, send
from backstate_client._namespace import Mode, Namespace, Runner, operation
from backstate_client._types import (
    FinalizedMigration,
    FinalizedVersion,
    MachineDetail,
    MachinePage,
    ProvisionalMigration,
    ProvisionalVersion,
    VersionPage,
)

JAVASCRIPT = "application/javascript"


def deletion_hmac(machine_name: str, data: str) -> str:
    """base64url(HMAC-SHA256(key=machine name, data)), unpadded: the confirmation a delete
    carries (of the machine name itself, or of the instance name)."""
    digest = hmac.new(machine_name.encode(), data.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def code_bytes(
    code: str | bytes | None, gzipped_code: bytes | None, gzip: bool
) -> tuple[bytes, bool]:
    """The bytes to upload and whether they are gzipped, from `create`'s arguments."""
    if (code is None) == (gzipped_code is None):
        raise ValueError("pass exactly one of code and gzipped_code")
    if gzipped_code is not None:
        return gzipped_code, True
    raw = code.encode() if isinstance(code, str) else code
    assert raw is not None
    return (gzip_lib.compress(raw), True) if gzip else (raw, False)


def upload_code(
    url: str, fields: dict[str, str], content: bytes, *, gzipped: bool, file_name: str
) -> Flow[None]:
    """The official client's `uploadCode`: the signed fields in order, `content-type` (set in
    place if the fields have one), `content-encoding: gzip` for gzipped code, then the file."""
    form = {**fields, "content-type": JAVASCRIPT}
    if gzipped:
        form["content-encoding"] = "gzip"
    part = Multipart(form, "file", file_name, content, JAVASCRIPT)
    response = yield from send(Request("POST", url=url, multipart=part, auth="none"))
    if not 200 <= response.status < 300:
        refused = failure(response)
        raise ApiError(
            f"error uploading code: {refused.message}", response.status, refused.code
        ) from refused


class Machines(Namespace[Mode]):
    """Machines name a logical machine; its versions hold the code."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner)
        self.dangerously: MachinesDangerously[Mode] = MachinesDangerously(runner)

    @operation
    def list(self, cursor: str | None = None) -> Flow[MachinePage]:
        """A page of the org's machines; pass the page's `cursor` for the next one."""
        page: MachinePage = yield from call(Request("GET", "/machines", query=cursor_query(cursor)))
        return page

    @operation
    def get(self, machine_name: str) -> Flow[MachineDetail]:
        """A machine and its current version."""
        detail: MachineDetail = yield from call(Request("GET", path("machines", machine_name)))
        return detail

    @operation
    def create(self, machine_name: str) -> Flow[None]:
        """Create a machine (without versions; see `machine_versions.create`)."""
        yield from call(Request("POST", "/machines", json={"slug": machine_name}))


class MachinesDangerously(Namespace[Mode]):
    """Calls that lose data."""

    @operation
    def delete(
        self, machine_name: str, *, danger_data_will_be_deleted_forever: Literal[True]
    ) -> Flow[None]:
        """Delete a machine with all its versions and migrations, for good. Refused
        (`ConflictError`) while the machine has instances."""
        body = {
            "dangerDataWillBeDeletedForever": danger_data_will_be_deleted_forever,
            "hmacSha256OfMachineNameWithMachineNameKey": deletion_hmac(machine_name, machine_name),
        }
        yield from call(Request("DELETE", path("machines", machine_name), json=body))


class MachineVersions(Namespace[Mode]):
    """A machine's versions: the code (an ES module exporting an XState 4 machine, `allowRead`
    and `allowWrite`) that its instances run."""

    @operation
    def list(self, machine_name: str, cursor: str | None = None) -> Flow[VersionPage]:
        """A page of the machine's versions."""
        request = Request("GET", path("machines", machine_name, "v"), query=cursor_query(cursor))
        page: VersionPage = yield from call(request)
        return page

    @operation
    def provisionally_create(
        self, machine_name: str, gzip: bool = False
    ) -> Flow[ProvisionalVersion]:
        """Step 1 of 3: reserve a version; where and how to upload its code."""
        made: ProvisionalVersion = yield from call(_provisional_version(machine_name, gzip))
        return made

    @operation
    def finalize(
        self,
        machine_name: str,
        signed_machine_version_id: str,
        *,
        client_info: str | None = None,
        make_current: bool | None = None,
    ) -> Flow[FinalizedVersion]:
        """Step 3 of 3: finalize an uploaded version; `make_current` makes new instances use
        it. `client_info` is your own version label (a semver, a commit)."""
        signed = signed_machine_version_id
        request = _finalize_version(machine_name, signed, client_info, make_current)
        done: FinalizedVersion = yield from call(request)
        return done

    @operation
    def create(
        self,
        machine_name: str,
        code: str | bytes | None = None,
        *,
        gzipped_code: bytes | None = None,
        gzip: bool = True,
        client_info: str | None = None,
        make_current: bool | None = None,
    ) -> Flow[FinalizedVersion]:
        """Create a version from its code in one call (provisional create, upload, finalize).
        `code` is gzipped before the upload unless `gzip=False`; pass `gzipped_code` instead
        for code you compressed yourself."""
        content, gzipped = code_bytes(code, gzipped_code, gzip)
        made: ProvisionalVersion = yield from call(_provisional_version(machine_name, gzipped))
        yield from upload_code(
            made["codeUploadUrl"], made["codeUploadFields"], content,
            gzipped=gzipped, file_name=f"{machine_name}.js",
        )  # fmt: skip
        signed = made["machineVersionId"]
        request = _finalize_version(machine_name, signed, client_info, make_current)
        done: FinalizedVersion = yield from call(request)
        return done


class MachineVersionMigrations(Namespace[Mode]):
    """Migrations move instances from one version to another (`upgradeState`,
    `upgradeContext`); see `machine_instances.admin.update_desired_version`."""

    @operation
    def provisionally_create(
        self,
        machine_name: str,
        from_machine_version_id: str,
        to_machine_version_id: str,
        gzip: bool = False,
    ) -> Flow[ProvisionalMigration]:
        """Step 1 of 3: reserve a migration between two versions; where to upload its code.
        (The official client also sends the code itself in this body; it is not needed.)"""
        request = _provisional_migration(
            machine_name, from_machine_version_id, to_machine_version_id, gzip
        )
        made: ProvisionalMigration = yield from call(request)
        return made

    @operation
    def finalize(
        self, machine_name: str, signed_machine_version_migration_id: str
    ) -> Flow[FinalizedMigration]:
        """Step 3 of 3: finalize an uploaded migration."""
        request = _finalize_migration(machine_name, signed_machine_version_migration_id)
        done: FinalizedMigration = yield from call(request)
        return done

    @operation
    def create(
        self,
        machine_name: str,
        from_machine_version_id: str,
        to_machine_version_id: str,
        code: str | bytes | None = None,
        *,
        gzipped_code: bytes | None = None,
        gzip: bool = True,
    ) -> Flow[FinalizedMigration]:
        """Create a migration from its code in one call (gzipped unless `gzip=False`)."""
        content, gzipped = code_bytes(code, gzipped_code, gzip)
        request = _provisional_migration(
            machine_name, from_machine_version_id, to_machine_version_id, gzipped
        )
        made: ProvisionalMigration = yield from call(request)
        file_name = f"{machine_name}_{from_machine_version_id}_to_{to_machine_version_id}.js"
        yield from upload_code(
            made["codeUploadUrl"], made["codeUploadFields"], content,
            gzipped=gzipped, file_name=file_name,
        )  # fmt: skip
        signed = made["machineVersionMigrationId"]
        done: FinalizedMigration = yield from call(_finalize_migration(machine_name, signed))
        return done


def _provisional_version(machine_name: str, gzip: bool) -> Request:
    # `?gzip` without a value, as the official client writes it.
    return Request("POST", path("machines", machine_name, "v") + ("?gzip" if gzip else ""))


def _finalize_version(
    machine_name: str, signed_id: str, client_info: str | None, make_current: bool | None
) -> Request:
    body = _without_none({"clientInfo": client_info, "makeCurrent": make_current})
    return Request("PUT", path("machines", machine_name, "v", signed_id), json=body)


def _provisional_migration(
    machine_name: str, from_version_id: str, to_version_id: str, gzip: bool
) -> Request:
    where = path("machines", machine_name, "migrations") + ("?gzip" if gzip else "")
    body = {"fromMachineVersionId": from_version_id, "toMachineVersionId": to_version_id}
    return Request("POST", where, json=body)


def _finalize_migration(machine_name: str, signed_id: str) -> Request:
    return Request("PUT", path("machines", machine_name, "migrations", signed_id))


def _without_none(body: dict[str, object]) -> dict[str, object]:
    """As JSON.stringify drops undefined members."""
    return {key: value for key, value in body.items() if value is not None}
