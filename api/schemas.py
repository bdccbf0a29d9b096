"""Request (`XCreate`, `XUpdate`, `XDelete`) and response (`XPublic`, `XList`) bodies.

Field names are State Backed's camelCase wire names. Bodies that carry a machine's own data
(instance state, context, events) are plain dicts: their `null`s must survive as sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from api.scopes import KeyUse, Scope

SLUG_PATTERN = r"^[a-zA-Z0-9_-]{1,128}$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


class Wire(BaseModel):
    """Ignore unknown fields: newer clients send more than we know (e.g. `indexes`)."""

    model_config = ConfigDict(extra="ignore")


def iso(when: datetime) -> str:
    return when.isoformat()


# --- machines ---------------------------------------------------------------------------


class MachineCreate(Wire):
    slug: Slug


class MachineDelete(Wire):
    dangerDataWillBeDeletedForever: Literal[True]
    hmacSha256OfMachineNameWithMachineNameKey: str


class MachineVersionInfo(Wire):
    id: str
    createdAt: str
    clientInfo: str


class MachineSummary(Wire):
    slug: str
    createdAt: str
    currentVersion: MachineVersionInfo | None = None


class MachineList(Wire):
    machines: list[MachineSummary]
    cursor: str | None = None


class MachinePublic(Wire):
    createdAt: str
    currentVersion: MachineVersionInfo | None = None
    indexes: list[str] = Field(default_factory=list)


class MachineGet(Wire):
    machine: MachinePublic


# --- machine versions -------------------------------------------------------------------


class VersionProvisional(Wire):
    machineVersionId: str
    codeUploadUrl: str
    codeUploadFields: dict[str, str]


class VersionFinalize(Wire):
    clientInfo: str | None = None
    makeCurrent: bool = False


class VersionFinalized(Wire):
    machineVersionId: str


class VersionList(Wire):
    versions: list[MachineVersionInfo]
    cursor: str | None = None


# --- migrations between versions --------------------------------------------------------


class MigrationCreate(Wire):
    """The client also sends the whole code (`code`, or `gzippedCode` as an object of byte
    values): ignored here, as every unknown field is; the code comes through the upload."""

    fromMachineVersionId: str
    toMachineVersionId: str


class MigrationProvisional(Wire):
    machineVersionMigrationId: str
    codeUploadUrl: str
    codeUploadFields: dict[str, str]


class MigrationFinalized(Wire):
    machineVersionMigrationId: str


# --- instances --------------------------------------------------------------------------


class InstanceCreate(Wire):
    slug: Slug
    context: dict[str, Any] | None = None
    machineVersionId: str | None = None


class EventSend(Wire):
    event: str | dict[str, Any]

    @field_validator("event")
    @classmethod
    def _normalize(cls, event: str | dict[str, Any]) -> dict[str, Any]:
        """A string event becomes `{type: <string>}`; an object needs a string `type`."""
        if isinstance(event, str):
            event = {"type": event}
        if not isinstance(event.get("type"), str) or not event["type"]:
            raise ValueError("an event is a non-empty string or an object with a string `type`")
        return event


class InstanceDelete(Wire):
    dangerDataWillBeDeletedForever: Literal[True]
    hmacSha256OfMachineInstanceNameWithMachineNameKey: str


class DesiredVersionUpdate(Wire):
    targetMachineVersionId: str


class StatusUpdate(Wire):
    status: Literal["running", "paused"]


class InstanceSummary(Wire):
    slug: str
    createdAt: str
    status: Literal["running", "paused"]
    machineVersion: MachineVersionInfo


class InstanceList(Wire):
    instances: list[InstanceSummary]
    cursor: str | None = None


# --- keys -------------------------------------------------------------------------------


class KeyCreate(Wire):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    use: KeyUse | None = None
    scopes: list[Scope] | None = None


class KeyCreated(Wire):
    id: str
    key: str


class KeyPublic(Wire):
    id: str
    name: str
    scopes: list[str]
    createdAt: str


class KeyList(Wire):
    keys: list[KeyPublic]
    cursor: str | None = None


# --- orgs and billing -------------------------------------------------------------------


class OrgCreate(Wire):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    allowAnonymousAccess: bool = True


class OrgCreated(Wire):
    id: str


class OrgLimits(Wire):
    monthlyEventsLimit: int
    monthlyReadsLimit: int


class OrgPublic(Wire):
    id: str
    name: str
    role: Literal["admin", "read", "write"]
    createdAt: str
    limits: OrgLimits


class OrgList(Wire):
    orgs: list[OrgPublic]
    cursor: str | None = None


class BillingPublic(Wire):
    url: str
