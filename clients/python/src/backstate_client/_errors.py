"""The exceptions the client raises, named as `@statebacked/client`'s `errors.*` are.

ApiError                                  any failed request (status, code, parameter)
├── ClientError                           400
│   ├── OrgHeaderRequiredError            400 specify-org
│   └── NoMigrationPathError              400 no-migration-path
├── UnauthorizedError                     403 (also: a token could not be obtained)
│   ├── MissingOrgError                   403 missing-org
│   ├── MissingScopeError                 403 missing-scope
│   ├── MissingUserError                  403 missing-user
│   └── RejectedByMachineAuthorizerError  403 rejected-by-machine-authorizer
├── NotFoundError                         404
└── ConflictError                         409

Any other status (401, 413, 429, 5xx...) is a plain `ApiError`. `error_for` is the one place a
status and code become a class, exactly as the official client's `adaptError` chooses.
Network failures are not `ApiError`s: they surface as httpx's or websockets' own exceptions.
"""

from __future__ import annotations

DEFAULT_MESSAGE = "error processing request"


class ApiError(Exception):
    """A request State Backed (or backstate) refused or failed."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        parameter: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.parameter = parameter

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status}, code={self.code!r})"


class ClientError(ApiError):
    """400: the request was malformed (`parameter` names the offending field, if known)."""

    def __init__(self, message: str, code: str | None = None, parameter: str | None = None):
        super().__init__(message, 400, code, parameter)


class OrgHeaderRequiredError(ClientError):
    """400 specify-org: the caller belongs to several orgs; pass `org_id`."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message, "specify-org", parameter)


class NoMigrationPathError(ClientError):
    """400 no-migration-path: no chain of migrations leads to the desired version."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message, "no-migration-path", parameter)


class UnauthorizedError(ApiError):
    """403: the token was refused, or could not be obtained at all."""

    def __init__(self, message: str, code: str | None = None, parameter: str | None = None):
        super().__init__(message, 403, code, parameter)


class MissingOrgError(UnauthorizedError):
    """403 missing-org: the token does not belong to the requested org."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message, "missing-org", parameter)


class MissingScopeError(UnauthorizedError):
    """403 missing-scope: the token's key lacks the scope this call needs."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message, "missing-scope", parameter)


class MissingUserError(UnauthorizedError):
    """403 missing-user: the call needs a user session."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message, "missing-user", parameter)


class RejectedByMachineAuthorizerError(UnauthorizedError):
    """403 rejected-by-machine-authorizer: the machine's `allowRead`/`allowWrite` said no."""

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message, "rejected-by-machine-authorizer", parameter)


class NotFoundError(ApiError):
    """404: no such machine, version, instance or key."""

    def __init__(self, message: str, code: str | None = None, parameter: str | None = None):
        super().__init__(message, 404, code, parameter)


class ConflictError(ApiError):
    """409: it already exists, the instance is paused, or the machine still has instances."""

    def __init__(self, message: str, code: str | None = None, parameter: str | None = None):
        super().__init__(message, 409, code, parameter)


_BY_CODE: dict[tuple[int, str], type[ApiError]] = {
    (400, "specify-org"): OrgHeaderRequiredError,
    (400, "no-migration-path"): NoMigrationPathError,
    (403, "missing-org"): MissingOrgError,
    (403, "missing-scope"): MissingScopeError,
    (403, "missing-user"): MissingUserError,
    (403, "rejected-by-machine-authorizer"): RejectedByMachineAuthorizerError,
}
_BY_STATUS: dict[int, type[ClientError | UnauthorizedError | NotFoundError | ConflictError]] = {
    400: ClientError,
    403: UnauthorizedError,
    404: NotFoundError,
    409: ConflictError,
}


def error_for(
    status: int,
    code: str | None,
    message: str = DEFAULT_MESSAGE,
    parameter: str | None = None,
) -> ApiError:
    """The exception for a failed response's status and `code` (the contract's §3 table)."""
    specific = _BY_CODE.get((status, code)) if code is not None else None
    if specific is not None:
        return specific(message, parameter=parameter)
    general = _BY_STATUS.get(status)
    if general is not None:
        return general(message, code, parameter)
    return ApiError(message, status, code, parameter)
