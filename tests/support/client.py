"""An httpx client that speaks to the server the way `@statebacked/client` does."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import httpx

from api.tokens import mint


@dataclass(frozen=True)
class Admin:
    """The org and admin key `backstate init` made for a test server."""

    org_id: str
    key_id: str
    secret: str


def hmac_b64url(key: str, data: str) -> str:
    digest = hmac.new(key.encode(), data.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Api:
    def __init__(self, base_url: str, token: str | None, **headers: str):
        all_headers = {"content-type": "application/json", **headers}
        if token is not None:
            all_headers["authorization"] = f"Bearer {token}"
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, headers=all_headers, timeout=60)

    @classmethod
    def for_key(cls, base_url: str, key_id: str, secret: str, **kw: Any) -> Api:
        act = kw.pop("act", None)
        return cls(base_url, mint(key_id, secret, act=act), **kw)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["content"] = json.dumps(body)
        return self.http.request(method, path, **kw)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = self.request(method, path, body, **kw)
        assert response.is_success, (response.status_code, response.text)
        if response.status_code in (201, 204):
            assert response.content == b""
            return None
        return response.json()

    # --- the client's multi-step flows -------------------------------------------------

    def upload_version(
        self,
        machine: str,
        source: str,
        *,
        gzipped: bool = True,
        make_current: bool = True,
        client_info: str = "test",
    ) -> str:
        """What `machineVersions.create` does: provisional, upload, finalize."""
        made = self.ok("POST", f"/machines/{machine}/v" + ("?gzip" if gzipped else ""))
        code = gzip.compress(source.encode()) if gzipped else source.encode()
        response = upload(made, code, gzipped=gzipped, file_name=f"{machine}.js")
        assert response.is_success, (response.status_code, response.text)
        body = {"clientInfo": client_info, "makeCurrent": make_current}
        done = self.ok("PUT", f"/machines/{machine}/v/{made['machineVersionId']}", body)
        return str(done["machineVersionId"])

    def upload_migration(
        self, machine: str, from_version: str, to_version: str, source: str, *,
        gzipped: bool = True,
    ) -> str:
        """What `machineVersionMigrations.create` does: provisional (with the whole code in the
        JSON body too, as the client sends it), upload, finalize with no body."""
        code = gzip.compress(source.encode()) if gzipped else source.encode()
        body: dict[str, Any] = {"fromMachineVersionId": from_version,
                                "toMachineVersionId": to_version}
        if gzipped:  # a Uint8Array through JSON.stringify: {"0": 31, "1": 139, ...}
            body["gzippedCode"] = {str(n): byte for n, byte in enumerate(code)}
        else:
            body["code"] = source
        made = self.ok("POST", f"/machines/{machine}/migrations" + ("?gzip" if gzipped else ""),
                       body)
        file_name = f"{machine}_{from_version}_to_{to_version}.js"
        response = upload(made, code, gzipped=gzipped, file_name=file_name)
        assert response.is_success, (response.status_code, response.text)
        done = self.ok("PUT", f"/machines/{machine}/migrations/{made['machineVersionMigrationId']}")
        return str(done["machineVersionMigrationId"])

    def set_desired_version(self, machine: str, slug: str, version: str) -> httpx.Response:
        return self.request("PUT", f"/machines/{machine}/i/{slug}/v",
                            {"targetMachineVersionId": version})

    def create_machine(self, machine: str, source: str) -> str:
        self.ok("POST", "/machines", {"slug": machine})
        return self.upload_version(machine, source)

    def create_instance(self, machine: str, slug: str, **extra: Any) -> Any:
        return self.ok("POST", f"/machines/{machine}", {"slug": slug, **extra})

    def send(self, machine: str, slug: str, event: Any) -> httpx.Response:
        return self.request("POST", f"/machines/{machine}/i/{slug}/events", {"event": event})

    def delete_instance(self, machine: str, slug: str) -> httpx.Response:
        body = {
            "dangerDataWillBeDeletedForever": True,
            "hmacSha256OfMachineInstanceNameWithMachineNameKey": hmac_b64url(machine, slug),
        }
        return self.request("DELETE", f"/machines/{machine}/i/{slug}", body)

    def delete_machine(self, machine: str) -> httpx.Response:
        body = {
            "dangerDataWillBeDeletedForever": True,
            "hmacSha256OfMachineNameWithMachineNameKey": hmac_b64url(machine, machine),
        }
        return self.request("DELETE", f"/machines/{machine}", body)


def upload(
    made: dict[str, Any], code: bytes, *, gzipped: bool, file_name: str = "m.js"
) -> httpx.Response:
    """The client's `uploadCode`: the signed fields, content-type, [content-encoding], file;
    no authorization header."""
    fields = {**made["codeUploadFields"], "content-type": "application/javascript"}
    if gzipped:
        fields["content-encoding"] = "gzip"
    files = {"file": (file_name, code, "application/javascript")}
    return httpx.post(made["codeUploadUrl"], data=fields, files=files, timeout=60)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is a JSON error with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("code"), str), body
    if code is not None:
        assert body["code"] == code, body
    return body
