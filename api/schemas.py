"""Request (`XCreate`, `XUpdate`, `XDelete`) and response (`XPublic`, `XList`) bodies.

Field names are State Backed's camelCase wire names. Bodies that carry a machine's own data
(instance state, context, events) are plain dicts: their `null`s must survive as sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

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


# --- backstate's own endpoints (api/routes/extensions.py) --------------------------------


class CurrentVersionUpdate(Wire):
    machineVersionId: str


class TimerPublic(Wire):
    id: str
    event: Any
    dueAt: str
    attempts: int


class TimerList(Wire):
    timers: list[TimerPublic]


class BundleBuild(Wire):
    source: Annotated[str, StringConstraints(min_length=1)]
    fileName: str | None = None


class BundleBuilt(Wire):
    code: str
    warnings: str


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
    allowAnonymousAccess: bool | None = None


class OrgList(Wire):
    orgs: list[OrgPublic]
    cursor: str | None = None


class BillingPublic(Wire):
    url: str


# --- identity: token exchange, identity and token providers, anonymous access -----------

Alg = Literal[
    "HS256", "HS384", "HS512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512",
    "ES256", "ES384", "ES512", "EdDSA",
]  # fmt: skip
Claim = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class IdpUpsert(Wire):
    aud: Claim | None = None
    iss: Claim | None = None
    algs: Annotated[list[Alg], Field(min_length=1)]
    key: Annotated[str, StringConstraints(min_length=1, max_length=8192)] | None = None
    jwksUrl: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    mapping: dict[str, Any]


class IdpDelete(Wire):
    aud: Claim | None = None
    iss: Claim | None = None


class IdpPublic(Wire):
    aud: str | None = None
    iss: str | None = None
    algs: list[str]
    jwksUrl: str | None = None
    mapping: dict[str, Any]


class IdpList(Wire):
    idps: list[IdpPublic]
    cursor: str | None = None


class TokenProviderUpsert(Wire):
    service: Slug
    keyId: str
    mapping: dict[str, Any]


class TokenProviderPublic(Wire):
    service: str
    keyId: str
    mapping: dict[str, Any]


class TokenProviderList(Wire):
    tokenProviders: list[TokenProviderPublic]
    cursor: str | None = None


class TokenExchanged(Wire):
    access_token: str
    issued_token_type: str
    token_type: str
    expires_in: int


class AnonymousAccess(Wire):
    allowAnonymousAccess: StrictBool
