"""The exceptions, as the official client's `errors` namespace (see `_errors.py` for the tree)."""

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

__all__ = [
    "ApiError",
    "ClientError",
    "ConflictError",
    "MissingOrgError",
    "MissingScopeError",
    "MissingUserError",
    "NoMigrationPathError",
    "NotFoundError",
    "OrgHeaderRequiredError",
    "RejectedByMachineAuthorizerError",
    "UnauthorizedError",
    "error_for",
]
