"""A Python client for the State Backed API, served by statebacked.dev and by backstate.

    from backstate_client import Client, sign_token

    token = sign_token(key_id, secret, {"sub": "user-1"}, expires_in="1h")
    with Client(token, api_host="http://127.0.0.1:8000") as client:
        state = client.machine_instances.send_event("toggler", "mine", "toggle")

`AsyncClient` offers the same calls to `await`. Errors are the `ApiError` tree (also as
`backstate_client.errors`).
"""

from backstate_client._async_client import AsyncClient
from backstate_client._client import Client
from backstate_client._errors import (
    ApiError,
    ClientError,
    ConflictError,
    MissingOrgError,
    MissingScopeError,
    MissingUserError,
    NoMigrationPathError,
    NotFoundError,
    OrgHeaderRequiredError,
    RejectedByMachineAuthorizerError,
    UnauthorizedError,
    error_for,
)
from backstate_client._logs import iso
from backstate_client._signing import anonymous_subject_token, parse_time_span, sign_token
from backstate_client._state import enhance_state, matches_state, to_strings
from backstate_client._subscription import AsyncSubscription, Subscription
from backstate_client._tokens import AnonymousSession, IdentityProviderToken, TokenConfig
from backstate_client._types import (
    AdminInstanceState,
    Billing,
    Event,
    FinalizedMigration,
    FinalizedVersion,
    IdentityProvider,
    IdentityProviderPage,
    InstancePage,
    InstanceStatus,
    InstanceSummary,
    Key,
    KeyCreated,
    KeyPage,
    LogBatch,
    LogEntry,
    Machine,
    MachineDetail,
    MachinePage,
    MachineSummary,
    MachineVersionInfo,
    Org,
    OrgCreated,
    OrgPage,
    ProvisionalMigration,
    ProvisionalVersion,
    State,
    StateValue,
    TokenProvider,
    TokenProviderPage,
    Transition,
    TransitionPage,
    VersionPage,
)

__version__ = "0.1.0"

__all__ = [
    "AdminInstanceState",
    "AnonymousSession",
    "ApiError",
    "AsyncClient",
    "AsyncSubscription",
    "Billing",
    "Client",
    "ClientError",
    "ConflictError",
    "Event",
    "FinalizedMigration",
    "FinalizedVersion",
    "IdentityProvider",
    "IdentityProviderPage",
    "IdentityProviderToken",
    "InstancePage",
    "InstanceStatus",
    "InstanceSummary",
    "Key",
    "KeyCreated",
    "KeyPage",
    "LogBatch",
    "LogEntry",
    "Machine",
    "MachineDetail",
    "MachinePage",
    "MachineSummary",
    "MachineVersionInfo",
    "MissingOrgError",
    "MissingScopeError",
    "MissingUserError",
    "NoMigrationPathError",
    "NotFoundError",
    "Org",
    "OrgCreated",
    "OrgHeaderRequiredError",
    "OrgPage",
    "ProvisionalMigration",
    "ProvisionalVersion",
    "RejectedByMachineAuthorizerError",
    "State",
    "StateValue",
    "Subscription",
    "TokenConfig",
    "TokenProvider",
    "TokenProviderPage",
    "Transition",
    "TransitionPage",
    "UnauthorizedError",
    "VersionPage",
    "anonymous_subject_token",
    "enhance_state",
    "error_for",
    "iso",
    "matches_state",
    "parse_time_span",
    "sign_token",
    "to_strings",
]
