"""What both clients are configured with, and how a flow's `Request` becomes an httpx request
(the same for `httpx.Client` and `httpx.AsyncClient`: an `httpx.Request` is sent by either)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from backstate_client._flow import Request

DEFAULT_API_HOST = "https://api.statebacked.dev"
DEFAULT_WS_PING_INTERVAL_S = 5 * 60.0
DEFAULT_TIMEOUT_S = 120.0  # an event may take State Backed's whole 90 s settle window


@dataclass(frozen=True)
class Options:
    api_host: str
    org_id: str | None = None
    act_as: str | None = None  # the JSON sent as x-statebacked-act
    ws_ping_interval_s: float = DEFAULT_WS_PING_INTERVAL_S

    @classmethod
    def make(
        cls,
        api_host: str,
        org_id: str | None,
        act_as: Mapping[str, Any] | None,
        ws_ping_interval_s: float,
    ) -> Options:
        # The official client appends paths to apiHost as given, so "https://h/" would call
        # "https://h//machines"; a trailing slash is dropped here instead.
        act = None if act_as is None else json.dumps(act_as, separators=(",", ":"))
        return cls(api_host.rstrip("/"), org_id, act, ws_ping_interval_s)

    def json_headers(self) -> dict[str, str]:
        """Sent with every API call: the official client sends content-type even without a
        body, and the org and act headers whenever they are configured."""
        headers = {"content-type": "application/json"}
        if self.org_id:
            headers["x-statebacked-org-id"] = self.org_id
        if self.act_as:
            headers["x-statebacked-act"] = self.act_as
        return headers

    def http_request(self, request: Request, token: str | None) -> httpx.Request:
        url = request.url or self.api_host + request.path
        headers = {} if request.auth == "none" else self.json_headers()
        if request.auth == "token":
            assert token is not None, "an authenticated request needs a token"
            headers["authorization"] = f"Bearer {token}"
        params = dict(request.query) or None
        if request.form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            form = urlencode(request.form).encode()
            return httpx.Request(request.method, url, params=params, headers=headers, content=form)
        if request.multipart is not None:
            part = request.multipart
            files = {part.file_field: (part.file_name, part.content, part.content_type)}
            return httpx.Request(
                request.method, url, params=params, headers=headers,
                data=dict(part.fields), files=files,
            )  # fmt: skip
        content = None if request.json is None else _json(request.json)
        return httpx.Request(request.method, url, params=params, headers=headers, content=content)

    def realtime_url(self, token: str) -> str:
        """`ws(s)://<host>/<path>/rt?token=...[&x-statebacked-org-id=...]`, as the official
        client builds it: http becomes ws and anything else wss."""
        parts = urlsplit(self.api_host)
        scheme = "ws" if parts.scheme == "http" else "wss"
        query = {"token": token}
        if self.org_id:
            query["x-statebacked-org-id"] = self.org_id
        return urlunsplit((scheme, parts.netloc, parts.path + "/rt", urlencode(query), ""))


def _json(value: Any) -> bytes:
    """As JSON.stringify writes it (no spaces, characters as they are), in UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
