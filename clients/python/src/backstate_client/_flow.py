"""Every API call written once, as a flow that both transports execute.

A flow is a generator: it yields a `Request` and receives the `Response`, yields `Sleep` to
wait, `Resolve` to call a user's function (a token getter), `Emit` to hand a value to the caller
of a streaming call, and returns the call's result. A step that fails (a network error, a
getter that raises) is thrown into the flow.

Flows decode responses themselves (`call`), so a flow can catch an error of one request and go
on (`get_or_create`'s 404/409 dance), and none of them touches the network: the sync client
drives them with `httpx.Client`, the async one with `httpx.AsyncClient`, and a test can drive
one by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias, TypeVar
from urllib.parse import quote

from backstate_client._errors import DEFAULT_MESSAGE, ApiError, error_for

T = TypeVar("T")
E = TypeVar("E")

# Who a request is from: "token" carries the bearer token and the JSON/org/act headers (every
# API call), "headers" only the latter (the token exchange), "none" nothing (the code upload to
# a signed URL, which may not even be ours).
Auth = Literal["token", "headers", "none"]


@dataclass(frozen=True)
class Multipart:
    """A `multipart/form-data` body: text fields in order, then one file."""

    fields: Mapping[str, str]
    file_field: str
    file_name: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class Request:
    method: str
    path: str = ""  # appended to the API host
    url: str | None = None  # absolute instead (a signed upload URL)
    query: Mapping[str, str] = field(default_factory=dict)
    json: Any = None  # sent as JSON unless None
    form: Mapping[str, str] | None = None  # application/x-www-form-urlencoded
    multipart: Multipart | None = None
    auth: Auth = "token"


@dataclass(frozen=True)
class Response:
    status: int
    content: bytes


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Resolve:
    """Call `getter` (and await its result in the async client); the flow is sent the value."""

    getter: Callable[[], Any]


@dataclass(frozen=True)
class Emit(Generic[E]):
    value: E


Step: TypeAlias = Request | Sleep | Resolve | Emit[Any]
# A call: yields steps, is sent the `Response` to a `Request`, the value of a `Resolve`, None
# otherwise; returns T.
Flow: TypeAlias = Generator[Step, Any, T]
# A streaming call: its values are `Emit`ted; it returns nothing.
Stream: TypeAlias = Generator[Step, Any, None]


def path(*segments: str) -> str:
    """`/a/b/c` with each segment percent-encoded: valid names are unchanged, and a name holding
    `/` or `?` cannot reach another endpoint."""
    return "".join("/" + quote(segment, safe="") for segment in segments)


def cursor_query(cursor: str | None) -> dict[str, str]:
    return {} if cursor is None else {"cursor": cursor}


def send(request: Request) -> Flow[Response]:
    """Yield one request; its raw response."""
    response = yield request
    assert isinstance(response, Response), "the transport must answer a Request with a Response"
    return response


def call(request: Request) -> Flow[Any]:
    """Yield one request; its decoded body, or raise its `ApiError`."""
    return decode((yield from send(request)))


def decode(response: Response) -> Any:
    """As the official client's `adaptErrors`: 201 and 204 have no body, any other 2xx is JSON,
    anything else becomes the exception its status and `code` name."""
    if 200 <= response.status < 300:
        if response.status in (201, 204):
            return None
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise ApiError(
                f"the server answered {response.status} without a JSON body", response.status
            ) from exc
    raise failure(response)


def failure(response: Response) -> ApiError:
    """The exception for a non-2xx response (`{error, code, parameter}` if the body has them)."""
    message, code, parameter = DEFAULT_MESSAGE, None, None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = _text(body.get("error")) or message
        code = _text(body.get("code"))
        parameter = _text(body.get("parameter"))
    return error_for(response.status, code, message, parameter)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
