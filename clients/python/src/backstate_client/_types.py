"""The API's JSON shapes, as TypedDicts with State Backed's own camelCase keys (the contract's
`gen-api.d.ts` types). Responses are returned as the server sent them, so a field a newer server
adds is still there; only instance states gain `states` (see `_state.py`)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

StateValue: TypeAlias = "str | dict[str, StateValue]"
Event: TypeAlias = "str | dict[str, Any]"
InstanceStatus: TypeAlias = Literal["running", "paused"]
KeyUse: TypeAlias = Literal["production", "ci"]


class MachineVersionInfo(TypedDict):
    id: str
    createdAt: str
    clientInfo: str


class MachineSummary(TypedDict):
    slug: str
    createdAt: str
    currentVersion: NotRequired[MachineVersionInfo]


class MachinePage(TypedDict):
    machines: list[MachineSummary]
    cursor: NotRequired[str]


class Machine(TypedDict):
    createdAt: str
    currentVersion: NotRequired[MachineVersionInfo]
    indexes: NotRequired[list[str]]


class MachineDetail(TypedDict):
    machine: Machine


class ProvisionalVersion(TypedDict):
    machineVersionId: str  # signed: pass it to `finalize`
    codeUploadUrl: str
    codeUploadFields: dict[str, str]


class FinalizedVersion(TypedDict):
    machineVersionId: str


class VersionPage(TypedDict):
    versions: list[MachineVersionInfo]
    cursor: NotRequired[str]


class ProvisionalMigration(TypedDict):
    machineVersionMigrationId: str  # signed: pass it to `finalize`
    codeUploadUrl: str
    codeUploadFields: dict[str, str]


class FinalizedMigration(TypedDict):
    machineVersionMigrationId: str


class State(TypedDict):
    """An instance's state as callers see it. `ts` is epoch milliseconds, increasing per
    instance; `states` lists every state path, as XState's `state.toStrings()`."""

    ts: int
    state: StateValue
    publicContext: NotRequired[dict[str, Any]]
    tags: list[str]
    done: bool
    states: list[str]


class InstanceSummary(TypedDict):
    slug: str
    createdAt: str
    status: InstanceStatus
    machineVersion: MachineVersionInfo


class InstancePage(TypedDict):
    instances: list[InstanceSummary]
    cursor: NotRequired[str]


class Transition(TypedDict):
    createdAt: str
    state: StateValue
    event: Event


class TransitionPage(TypedDict):
    transitions: list[Transition]
    cursor: NotRequired[str]


class AdminInstanceState(TypedDict):
    state: StateValue
    context: dict[str, Any]
    status: InstanceStatus
    tags: list[str]
    done: bool
    machineVersion: MachineVersionInfo
    desiredMachineVersion: NotRequired[MachineVersionInfo]
    createdAt: str


class LogEntry(TypedDict):
    timestamp: str
    orgId: str
    machineName: str
    instanceName: str
    machineVersionId: str
    outputType: Literal["stdout", "stderr"]
    log: str


class LogBatch(TypedDict):
    maxTimestamp: str  # the `from` of the next call; equal to this call's `from`: nothing new
    logs: list[LogEntry]


class IdentityProvider(TypedDict):
    aud: NotRequired[str]
    iss: NotRequired[str]
    algs: list[str]
    jwksUrl: NotRequired[str]
    mapping: dict[str, Any]


class IdentityProviderPage(TypedDict):
    idps: list[IdentityProvider]
    cursor: NotRequired[str]


class TokenProvider(TypedDict):
    service: str
    keyId: str
    mapping: dict[str, Any]


class TokenProviderPage(TypedDict):
    tokenProviders: list[TokenProvider]
    cursor: NotRequired[str]


class OrgLimits(TypedDict):
    monthlyEventsLimit: int
    monthlyReadsLimit: int


class Org(TypedDict):
    id: str
    name: str
    role: Literal["admin", "read", "write"]
    createdAt: str
    limits: OrgLimits


class OrgPage(TypedDict):
    orgs: list[Org]
    cursor: NotRequired[str]


class OrgCreated(TypedDict):
    id: str


class Key(TypedDict):
    id: str
    name: str
    scopes: list[str]
    createdAt: str


class KeyPage(TypedDict):
    keys: list[Key]
    cursor: NotRequired[str]


class KeyCreated(TypedDict):
    id: str
    key: str  # the secret (`sbsec_...`): shown only this once


class Billing(TypedDict):
    url: str
