"""The exception for each status and code (the contract's §3 table, the official client's
`adaptError`), and how responses are decoded."""

from __future__ import annotations

import pytest
from backstate_client import errors
from backstate_client._flow import Response, decode

TABLE: list[tuple[int, str | None, type[errors.ApiError]]] = [
    (400, "specify-org", errors.OrgHeaderRequiredError),
    (400, "no-migration-path", errors.NoMigrationPathError),
    (400, "invalid-parameter", errors.ClientError),
    (400, None, errors.ClientError),
    (403, "missing-org", errors.MissingOrgError),
    (403, "missing-scope", errors.MissingScopeError),
    (403, "missing-user", errors.MissingUserError),
    (403, "rejected-by-machine-authorizer", errors.RejectedByMachineAuthorizerError),
    (403, "unauthorized", errors.UnauthorizedError),
    (403, None, errors.UnauthorizedError),
    (404, "not-found", errors.NotFoundError),
    (404, None, errors.NotFoundError),
    (409, "invalid-state", errors.ConflictError),
    (409, None, errors.ConflictError),
    (401, "unauthorized", errors.ApiError),
    (413, "payload-too-large", errors.ApiError),
    (429, None, errors.ApiError),
    (500, "internal-error", errors.ApiError),
    (403, "no-migration-path", errors.UnauthorizedError),  # codes count with their status
    (400, "missing-scope", errors.ClientError),
]


@pytest.mark.parametrize(("status", "code", "cls"), TABLE)
def test_error_for_status_and_code(status: int, code: str | None, cls: type) -> None:
    error = errors.error_for(status, code, "what happened", "slug")
    assert type(error) is cls
    assert (error.status, error.code, str(error), error.parameter) == (
        status, code, "what happened", "slug"
    )  # fmt: skip
    assert isinstance(error, errors.ApiError)


def test_the_tree() -> None:
    assert issubclass(errors.OrgHeaderRequiredError, errors.ClientError)
    assert issubclass(errors.NoMigrationPathError, errors.ClientError)
    for cls in [errors.MissingOrgError, errors.MissingScopeError, errors.MissingUserError,
                errors.RejectedByMachineAuthorizerError]:  # fmt: skip
        assert issubclass(cls, errors.UnauthorizedError)


def test_decode() -> None:
    assert decode(Response(200, b'{"a": 1}')) == {"a": 1}
    assert decode(Response(201, b"")) is None and decode(Response(204, b"ignored")) is None
    with pytest.raises(errors.ApiError, match="without a JSON body"):
        decode(Response(200, b""))
    with pytest.raises(errors.ConflictError) as conflict:
        decode(Response(409, b'{"error": "paused", "code": "invalid-state"}'))
    assert (str(conflict.value), conflict.value.code) == ("paused", "invalid-state")
    for body in [b"<html>bad gateway</html>", b"", b"[1]", b'{"error": 5, "code": []}']:
        with pytest.raises(errors.ApiError) as failed:
            decode(Response(502, body))
        assert str(failed.value) == "error processing request" and failed.value.code is None
    with pytest.raises(errors.ClientError) as invalid:
        decode(Response(400, b'{"error": "bad", "code": "invalid-parameter", "parameter": "x"}'))
    assert invalid.value.parameter == "x"
