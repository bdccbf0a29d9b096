"""HTTP behaviour every client relies on: error bodies, body limits, CORS, paths."""

from __future__ import annotations

import httpx

from tests.conftest import Server
from tests.support.bundles import COUNTER
from tests.support.client import Api, assert_error, upload


def test_malformed_json_and_wrong_types(api: Api) -> None:
    bad = api.http.post("/machines", content=b'{"slug": ')
    assert assert_error(bad, 400, "invalid-parameter")["parameter"] == "body"
    assert_error(api.http.post("/machines", content=b"[1, 2]"), 400, "invalid-parameter")
    assert_error(api.http.post("/machines", content=b""), 400, "invalid-parameter")
    wrong = api.request("POST", "/keys", {"name": "k", "scopes": ["nope"]})
    assert assert_error(wrong, 400)["parameter"].startswith("scopes")
    wrong_use = api.request("POST", "/keys", {"name": "k", "use": "root"})
    assert assert_error(wrong_use, 400)["parameter"] == "use"
    assert api.ok("GET", "/machines")["machines"] == []
    assert len(api.ok("GET", "/keys")["keys"]) == 1


def test_invalid_path_names_are_400(api: Api) -> None:
    body = assert_error(api.request("GET", "/machines/bad%20name"), 400, "invalid-parameter")
    assert body["parameter"] == "machineName"
    body = assert_error(api.request("GET", "/machines/m/i/" + "x" * 129), 400)
    assert body["parameter"] == "instanceName"


def test_oversized_bodies_are_413_and_the_server_keeps_serving(server: Server, api: Api) -> None:
    big = b'{"slug": "' + b"x" * server.settings.max_body_bytes + b'"}'
    assert_error(api.http.post("/machines", content=big), 413, "payload-too-large")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(server.settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    chunked = api.http.post("/machines", content=chunks())
    assert_error(chunked, 413, "payload-too-large")
    assert api.ok("GET", "/machines")["machines"] == []


def test_unknown_routes_and_methods_are_json(api: Api) -> None:
    assert_error(api.request("GET", "/nothing/here/at/all"), 404, "not-found")
    assert_error(api.request("PATCH", "/machines"), 405, "method-not-allowed")


def test_internal_errors_do_not_leak(server: Server, api: Api) -> None:
    def explode(*_args: object) -> None:
        raise RuntimeError("secret internals")

    server.services.machines.create = explode  # type: ignore[method-assign]
    body = assert_error(api.request("POST", "/machines", {"slug": "m"}), 500, "internal-error")
    assert "secret" not in body["error"]
    assert api.request("GET", "/machines").status_code == 200


def test_double_slashes_are_served(api: Api) -> None:
    assert api.http.get(api.base_url + "//machines").status_code == 200


def test_cors_preflight_and_headers(server: Server) -> None:
    preflight = httpx.options(
        server.url + "/machines/m/i/i/events",
        headers={
            "origin": "https://app.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": (
                "authorization, content-type, x-statebacked-org-id, x-statebacked-act"
            ),
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://app.example.com")
    allowed = preflight.headers["access-control-allow-headers"].lower()
    for header in ["authorization", "content-type", "x-statebacked-org-id", "x-statebacked-act"]:
        assert header in allowed
    denied = httpx.get(server.url + "/machines", headers={"origin": "https://x.example"})
    assert denied.status_code == 403
    assert denied.headers["access-control-allow-origin"] == "*"


def test_upload_endpoint_sends_cors_headers(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    made = api.ok("POST", "/machines/m/v")
    response = httpx.post(
        made["codeUploadUrl"],
        data=made["codeUploadFields"],
        files={"file": ("m.js", COUNTER.encode(), "application/javascript")},
        headers={"origin": "https://app.example.com"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"


def test_health(server: Server) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"ok": True}


def test_nul_in_names_is_400_on_every_database(api: Api) -> None:
    # PostgreSQL's text cannot hold NUL: this was a 500 there (found by tests/api/test_openapi.py)
    for path, body, parameter in [
        ("/keys", {"name": "a\u0000b", "use": "production"}, "name"),
        ("/orgs", {"name": "a\u0000b"}, "name"),
    ]:
        error = assert_error(api.request("POST", path, body), 400, "invalid-parameter")
        assert error["parameter"] == parameter
        assert "NUL" in error["error"]
    api.ok("POST", "/machines", {"slug": "m"})
    made = api.ok("POST", "/machines/m/v")
    assert upload(made, COUNTER.encode(), gzipped=False).status_code == 204
    finalize = {"clientInfo": "v\u00001", "makeCurrent": True}
    bad = api.request("PUT", f"/machines/m/v/{made['machineVersionId']}", finalize)
    assert assert_error(bad, 400, "invalid-parameter")["parameter"] == "clientInfo"
    assert len(api.ok("GET", "/keys")["keys"]) == 1, "the refused key was not made"
    assert api.ok("GET", "/machines/m")["machine"].get("currentVersion") is None
