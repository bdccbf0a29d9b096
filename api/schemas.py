"""Request (`XCreate`, `XUpdate`, `XDelete`) and response (`XPublic`, `XList`) bodies.

Field names are State Backed's camelCase wire names. Bodies that carry a machine's own data
(instance state, context, events) are plain dicts: their `null`s must survive as sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from api.scopes import KeyUse, Scope

SLUG_PATTERN = r"^[a-zA-Z0-9_-]{1,128}$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


def _without_nul(text: str) -> str:
    """Text kept in a column of its own: PostgreSQL's text cannot hold NUL (machine data is
    stored as JSON, where it is escaped)."""
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


_NO_NUL = r"^[^\x00]*$"
Text = Annotated[
    str, AfterValidator(_without_nul), WithJsonSchema({"type": "string", "pattern": _NO_NUL})
]


def _bounded(max_length: int) -> tuple[StringConstraints, AfterValidator, WithJsonSchema]:
    """What makes a string non-empty text of at most `max_length` characters, without NUL."""
    return (
        StringConstraints(min_length=1, max_length=max_length),
        AfterValidator(_without_nul),
        WithJsonSchema(
            {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": _NO_NUL}
        ),
    )


Name = Annotated[str, *_bounded(256)]


class Wire(BaseModel):
    """Ignore unknown fields: newer clients send more than we know (e.g. `indexes`)."""

    model_config = ConfigDict(extra="ignore")


def iso(when: datetime) -> str:
    return when.isoformat()


# --- errors ---------------------------------------------------------------------------


class ErrorBody(Wire):
    """Every error answer (`api/errors.py`): State Backed's shape, which the clients decode."""

    error: str = Field(description="what went wrong, for people")
    code: str = Field(description="what went wrong, for programs, e.g. `not-found`")
    parameter: str | None = Field(
        default=None, description="the offending parameter, when one is to blame"
    )


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
    clientInfo: Text | None = None
    makeCurrent: StrictBool = False  # `0` or `"no"` are mistakes, not false


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


# What `EventSend._normalize` accepts, for the OpenAPI document.
_EVENT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string", "minLength": 1}},
        },
    ]
}


class EventSend(Wire):
    event: str | dict[str, Any] = Field(json_schema_extra=_EVENT_SCHEMA)

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


class Definition(Wire):
    """A version's state chart (format: `runtime/definitions.py`): its `root` state node, or
    why it is `unavailable`."""

    format: Literal[1]
    root: dict[str, Any] | None = Field(
        default=None, description="the root state node: its children nest in `states`"
    )
    unavailable: str | None = Field(
        default=None, description="why the chart could not be read from the machine"
    )


class VersionDefinition(Wire):
    machineVersionId: str
    definition: Definition


class BundleBuild(Wire):
    source: Annotated[str, StringConstraints(min_length=1)]
    fileName: str | None = None


class BundleBuilt(Wire):
    code: str
    warnings: str


# The instance routes answer plain dicts (a machine's data must reach the client as it is): these
# only describe them, in the OpenAPI document.

StateValue = str | dict[str, Any]  # XState's `state.value`: a name, or nested ones


class InstanceState(Wire):
    """An instance's State, as its readers see it."""

    ts: int = Field(description="epoch milliseconds of this state, increasing per instance")
    state: StateValue
    publicContext: Any = Field(
        default=None, description="the context's `public` part; absent when it has none"
    )
    tags: list[str]
    done: bool


class InstanceAdmin(Wire):
    """An instance as its administrators see it: the whole context, no authorizer."""

    state: StateValue
    context: Any
    status: Literal["running", "paused"]
    tags: list[str]
    done: bool
    machineVersion: MachineVersionInfo
    createdAt: str


class TransitionPublic(Wire):
    createdAt: str
    state: StateValue
    event: dict[str, Any]


class TransitionList(Wire):
    transitions: list[TransitionPublic]
    cursor: str | None = None


# --- keys -------------------------------------------------------------------------------


class KeyCreate(Wire):
    name: Name
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
    name: Name
    allowAnonymousAccess: StrictBool = True


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
Claim = Annotated[str, *_bounded(1024)]


class IdpUpsert(Wire):
    aud: Claim | None = None
    iss: Claim | None = None
    algs: Annotated[list[Alg], Field(min_length=1)]
    key: Annotated[str, StringConstraints(min_length=1, max_length=8192)] | None = None
    jwksUrl: Annotated[str, *_bounded(2048)] | None = None
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


# `GET /logs` answers plain dicts (paged as `logs.retrieve` expects): these describe them.


class LogEntry(Wire):
    """Consecutive lines of one step on one stream at one millisecond."""

    timestamp: str = Field(description="as JavaScript's `toISOString()`")
    orgId: str
    machineName: str
    instanceName: str
    machineVersionId: str | None = Field(
        default=None, description="absent for a runtime line about an instance since deleted"
    )
    outputType: Literal["stdout", "stderr"]
    log: str = Field(
        description="the lines, joined by newlines; the server's own start with `[backstate]`"
    )


class LogsPage(Wire):
    maxTimestamp: str = Field(
        description="where the next page starts (`from`); `from` itself when nothing is new yet"
    )
    logs: list[LogEntry]
