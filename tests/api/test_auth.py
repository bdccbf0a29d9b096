"""Bearer tokens, scopes, org selection and impersonation."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from api.app import create_app
from api.tokens import mint
from runtime.engine import Runtime
from tests.conftest import Server
from tests.support.bundles import COUNTER
from tests.support.client import Api, assert_error
from tests.support.server import run_server


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def bad_tokens(server: Server) -> dict[str, str]:
    key_id, secret = server.admin.key_id, server.admin.secret
    now = int(time.time())
    good_claims = {"act": {}, "aud": "https://api.statebacked.dev/", "exp": now + 600}

    def signed(claims: dict[str, Any], key: str = secret, **headers: Any) -> str:
        return jwt.encode(
            claims, key.encode(), algorithm="HS256", headers={"kid": key_id, **headers}
        )

    valid = mint(key_id, secret)
    head, payload, signature = valid.split(".")
    return {
        "expired": mint(key_id, secret, expires_in_s=-60),
        "forged signature": f"{head}.{payload}.{signature[:-4]}AAAA",
        "other secret": mint(key_id, "sbsec_" + "not-the-secret-" * 4),
        "unknown kid": mint("sbk_AAAAAAAAAAAAAAAAAAAAAA", secret),
        "malformed kid": mint("key-1", secret),
        "wrong audience": signed({**good_claims, "aud": "https://example.com/"}),
        "no audience": signed({"act": {}, "exp": now + 600}),
        "no expiry": signed({"act": {}, "aud": "https://api.statebacked.dev/"}),
        "alg none": f"{_b64({'alg': 'none', 'kid': key_id})}.{payload}.",
        "HS512 header": f"{_b64({'alg': 'HS512', 'kid': key_id})}.{payload}.{signature}",
        "garbage": "not-a-jwt",
        "not bearer": "Basic",
    }


def test_every_kind_of_bad_token_is_refused_and_changes_nothing(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "c1")
    before = api.ok("GET", "/machines/counter/i/c1/admin")
    for name, token in bad_tokens(server).items():
        with Api(server.url, token) as bad:
            for method, path, body in [
                ("GET", "/machines", None),
                ("POST", "/machines", {"slug": "evil"}),
                ("POST", "/machines/counter/i/c1/events", {"event": "inc"}),
                ("POST", "/machines/counter", {"slug": "evil"}),
                ("GET", "/machines/counter/i/c1", None),
                ("POST", "/keys", {"name": "evil"}),
            ]:
                response = bad.request(method, path, body)
                assert response.status_code == 403, (name, method, path, response.text)
                assert_error(response, 403)
    with Api(server.url, None) as anonymous:
        assert_error(anonymous.request("GET", "/machines"), 403, "unauthorized")
    assert api.ok("GET", "/machines/counter/i/c1/admin") == before
    assert [m["slug"] for m in api.ok("GET", "/machines")["machines"]] == ["counter"]
    assert len(api.ok("GET", "/keys")["keys"]) == 1


def test_a_little_clock_skew_is_tolerated(server: Server) -> None:
    token = mint(server.admin.key_id, server.admin.secret, expires_in_s=-3)
    with Api(server.url, token) as late:
        assert late.request("GET", "/machines").status_code == 200


def test_deleted_keys_stop_working(server: Server, api: Api) -> None:
    made = api.ok("POST", "/keys", {"name": "temp", "use": "ci"})
    with Api.for_key(server.url, made["id"], made["key"]) as temp:
        assert temp.request("GET", "/machines").status_code == 200
        assert api.request("DELETE", f"/keys/{made['id']}").status_code == 204
        assert_error(temp.request("GET", "/machines"), 403)


def test_a_key_deleted_through_another_process_stops_working_within_the_cache_time(
    server: Server, api: Api, shared_runtime: Runtime
) -> None:
    other = create_app(
        server.settings.model_copy(update={"key_cache_s": 1.0}), runtime=shared_runtime
    )
    made = api.ok("POST", "/keys", {"name": "temp", "use": "ci"})
    with run_server(other) as other_url, Api.for_key(other_url, made["id"], made["key"]) as temp:
        assert temp.request("GET", "/machines").status_code == 200  # now cached there
        assert api.request("DELETE", f"/keys/{made['id']}").status_code == 204
        deleted = time.monotonic()
        while temp.request("GET", "/machines").status_code == 200:
            assert time.monotonic() - deleted < 1.5, "the deleted key kept working"
            time.sleep(0.05)
        assert_error(temp.request("GET", "/machines"), 403)


def test_a_token_reused_until_past_its_expiry_is_then_refused(
    server: Server, shared_runtime: Runtime
) -> None:
    strict = create_app(
        server.settings.model_copy(update={"token_leeway_s": 0}), runtime=shared_runtime
    )
    with run_server(strict) as url:
        token = mint(server.admin.key_id, server.admin.secret, expires_in_s=2)  # 1-2 s left
        with Api(url, token) as api:
            assert api.request("GET", "/machines").status_code == 200
            assert api.request("GET", "/machines").status_code == 200  # verified once, reused
            time.sleep(2.1)
            assert_error(api.request("GET", "/machines"), 403)


@pytest.mark.parametrize(
    ("use", "allowed", "denied"),
    [
        (
            "ci",
            [("GET", "/machines"), ("POST", "/machines/counter/v")],
            [
                ("POST", "/machines/counter/i/c1/events"),
                ("GET", "/machines/counter/i/c1"),
                ("GET", "/keys"),
                ("GET", "/machines/counter/i/c1/admin"),
            ],
        ),
        (
            "production",
            [("POST", "/machines/counter/i/c1/events"), ("GET", "/machines/counter/i/c1")],
            [
                ("GET", "/machines"),
                ("POST", "/machines/counter/v"),
                ("GET", "/keys"),
                ("GET", "/machines/counter/i"),
                ("GET", "/orgs"),
                ("GET", "/billing"),
            ],
        ),
    ],
)
def test_scopes_are_enforced(
    server: Server,
    api: Api,
    use: str,
    allowed: list[tuple[str, str]],
    denied: list[tuple[str, str]],
) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "c1")
    made = api.ok("POST", "/keys", {"name": use, "use": use})
    with Api.for_key(server.url, made["id"], made["key"]) as limited:
        for method, path in allowed:
            body = {"event": "inc"} if path.endswith("/events") else None
            assert limited.request(method, path, body).status_code == 200, (method, path)
        for method, path in denied:
            body = {"event": "inc"} if path.endswith("/events") else None
            assert_error(limited.request(method, path, body), 403, "missing-scope")


def test_explicit_scopes_win_over_use(server: Server, api: Api) -> None:
    made = api.ok("POST", "/keys", {"name": "k", "use": "production", "scopes": ["machines.read"]})
    listed = {k["id"]: k for k in api.ok("GET", "/keys")["keys"]}
    assert listed[made["id"]]["scopes"] == ["machines.read"]
    with Api.for_key(server.url, made["id"], made["key"]) as limited:
        assert limited.request("GET", "/machines").status_code == 200
        assert_error(limited.request("POST", "/machines", {"slug": "x"}), 403, "missing-scope")


def test_org_header_must_match_the_key(server: Server) -> None:
    with server.client(**{"x-statebacked-org-id": server.admin.org_id}) as right:
        assert right.request("GET", "/machines").status_code == 200
    with server.client(**{"x-statebacked-org-id": "org_AAAAAAAAAAAAAAAAAAAAAA"}) as wrong:
        assert_error(wrong.request("GET", "/machines"), 403, "missing-org")


def test_act_claim_and_sub_fallback_reach_the_authorizer(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "mine", context={"owner": "alice"})
    claims = {"sub": "alice", "aud": "https://api.statebacked.dev/", "exp": int(time.time()) + 60}
    token = jwt.encode(
        claims,
        server.admin.secret.encode(),
        algorithm="HS256",
        headers={"kid": server.admin.key_id},
    )
    with Api(server.url, token) as alice:
        assert alice.send("counter", "mine", "inc").status_code == 200


def test_only_admins_may_impersonate(server: Server, api: Api) -> None:
    api.create_machine("counter", COUNTER)
    api.create_instance("counter", "mine", context={"owner": "alice"})
    with server.client(**{"x-statebacked-act": '{"sub": "alice"}'}) as as_alice:
        assert as_alice.send("counter", "mine", "inc").status_code == 200
    with server.client(**{"x-statebacked-act": '{"sub": "bob"}'}) as as_bob:
        assert_error(as_bob.send("counter", "mine", "inc"), 403, "rejected-by-machine-authorizer")
    for bad in ["not json", "[1]", '"alice"']:
        with server.client(**{"x-statebacked-act": bad}) as broken:
            body = assert_error(broken.send("counter", "mine", "inc"), 400)
            assert body["parameter"] == "x-statebacked-act"
    made = api.ok("POST", "/keys", {"name": "p", "use": "production"})
    with Api.for_key(
        server.url, made["id"], made["key"], **{"x-statebacked-act": '{"sub": "alice"}'}
    ) as production:
        assert_error(production.send("counter", "mine", "inc"), 403, "missing-scope")
    admin = api.ok("GET", "/machines/counter/i/mine/admin")
    assert admin["context"]["count"] == 1
