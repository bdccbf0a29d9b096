"""`POST /tokens` against a real server: anonymous sessions, shared-key and JWKS identity
providers, and every way an exchange can fail (each a 4xx in State Backed's shape that mints
nothing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from api.auth import Credentials
from api.settings import Settings
from tests.conftest import TEST_SECRET, Server
from tests.support.client import Api, assert_error
from tests.support.identity import (
    ACCESS,
    ANONYMOUS,
    GRANT,
    OWNED,
    access_token,
    anonymous_owner,
    anonymous_token,
    audience,
    exchange,
    hs_token,
    post_form,
)
from tests.support.issuer import Issuer, Tls, new_key, serve_issuer

SUPABASE_SECRET = "super-secret-jwt-token-with-at-least-32-characters"
SUPABASE_ISS = "https://proj.supabase.co/auth/v1"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def settings(database_url: str, tls: Tls) -> Settings:
    # The JWKS fetcher trusts the local issuer's CA; no refetch interval, so a rotation is
    # seen at once (tests/api/test_identity_jwks.py covers the interval with a fake clock).
    return Settings(
        database_url=database_url,
        secret=TEST_SECRET,
        window_s=5.0,
        jwks_ca_file=str(tls.ca_file),
        jwks_refresh_min_s=0,
    )


@pytest.fixture
def issuer(tls: Tls) -> Iterator[Issuer]:
    with serve_issuer(Issuer(), tls) as served:
        yield served


def _payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    assert "-" not in segment and "_" not in segment, "the client's atob cannot read it"
    loaded: dict[str, Any] = json.loads(base64.b64decode(segment + "=" * (-len(segment) % 4)))
    return loaded


def _production_key(api: Api) -> dict[str, str]:
    made: dict[str, str] = api.ok("POST", "/keys", {"name": "web", "use": "production"})
    return made


def _owned_instance(server: Server, token: str, slug: str, owner: str) -> Api:
    client = Api(server.url, token)
    state = client.create_instance("owned", slug, context={"owner": owner})
    assert state["state"] == "idle"
    return client


# --- anonymous sessions -------------------------------------------------------------------


def test_an_anonymous_session_gets_a_token_its_authorizers_see(server: Server, api: Api) -> None:
    org = server.admin.org_id
    api.create_machine("owned", OWNED)
    response = exchange(server.url, org, ANONYMOUS, anonymous_token(org, "s1", did="d1"))
    token = access_token(response)
    assert 0 < response.json()["expires_in"] <= 3600
    payload = _payload(token)
    assert payload["act"] == {"sid": "s1", "did": "d1", "auth": "anonymous"}
    assert payload["exp"] > time.time()

    keys = {k["id"]: k for k in api.ok("GET", "/keys")["keys"]}
    anonymous_key = keys[jwt.get_unverified_header(token)["kid"]]
    assert anonymous_key["name"] == ANONYMOUS
    assert set(anonymous_key["scopes"]) == {
        "events.write", "state.read", "instances.write", "indexes.read"}  # fmt: skip

    with _owned_instance(server, token, "mine", anonymous_owner("s1", "d1")) as owner:
        assert owner.send("owned", "mine", "inc").json()["publicContext"] == {"count": 1}
    other = access_token(exchange(server.url, org, ANONYMOUS, anonymous_token(org, "s2")))
    with Api(server.url, other) as stranger:
        assert_error(stranger.request("GET", "/machines/owned/i/mine"), 403,
                     "rejected-by-machine-authorizer")  # fmt: skip
        assert_error(stranger.send("owned", "mine", "inc"), 403, "rejected-by-machine-authorizer")
    # one signing key per org, however many sessions
    assert len(api.ok("GET", "/keys")["keys"]) == 2


def test_a_minted_token_is_verified_from_the_per_process_caches(server: Server) -> None:
    """The per-event path: a minted token goes through `authenticate_cached` (the event route's
    fast path) exactly as a key-signed one, without a database read."""
    org = server.admin.org_id
    token = access_token(exchange(server.url, org, ANONYMOUS, anonymous_token(org, "s1")))
    creds = Credentials(authorization=f"Bearer {token}")
    principal = server.services.auth.authenticate_cached(creds)
    assert principal is not None, "the exchange left the signing key in the key cache"
    assert principal.auth_context == {"sid": "s1", "did": "s1", "auth": "anonymous"}
    assert "events.write" in principal.scopes and not principal.is_admin
    with Api(server.url, token) as client:  # and the stack agrees
        assert_error(client.request("GET", "/machines/nope/i/x"), 404)


def test_switching_anonymous_access_off_refuses_and_revokes(server: Server, api: Api) -> None:
    org = server.admin.org_id
    assert api.ok("GET", "/anonymous-access") == {"allowAnonymousAccess": True}
    token = access_token(exchange(server.url, org, ANONYMOUS, anonymous_token(org)))
    with Api(server.url, token) as client:
        assert_error(client.request("GET", "/machines/nope/i/x"), 404)
        assert _set_anonymous(api, False).status_code == 204
        assert_error(client.request("GET", "/machines/nope/i/x"), 403)  # its key is gone
    assert api.ok("GET", "/anonymous-access") == {"allowAnonymousAccess": False}
    keys_before = api.ok("GET", "/keys")["keys"]
    refused = exchange(server.url, org, ANONYMOUS, anonymous_token(org))
    assert_error(refused, 403, "anonymous-access-disabled")
    assert "access_token" not in refused.json()
    assert api.ok("GET", "/keys")["keys"] == keys_before, "no key was made"
    orgs = api.ok("GET", "/orgs")["orgs"]
    assert orgs[0]["allowAnonymousAccess"] is False

    assert _set_anonymous(api, True).status_code == 204
    access_token(exchange(server.url, org, ANONYMOUS, anonymous_token(org)))


def _set_anonymous(api: Api, allowed: bool) -> httpx.Response:
    return api.request("PUT", "/anonymous-access", {"allowAnonymousAccess": allowed})


def test_an_org_made_without_anonymous_access_refuses_it(server: Server, api: Api) -> None:
    closed = api.ok("POST", "/orgs", {"name": "closed", "allowAnonymousAccess": False})["id"]
    opened = api.ok("POST", "/orgs", {"name": "open"})["id"]
    refused = exchange(server.url, closed, ANONYMOUS, anonymous_token(closed))
    assert_error(refused, 403, "anonymous-access-disabled")
    token = access_token(exchange(server.url, opened, ANONYMOUS, anonymous_token(opened)))
    with Api(server.url, token) as client:  # acts in the new org: no machines there
        assert_error(client.request("GET", "/machines/x/i/y"), 404)


def test_anonymous_access_needs_its_scopes(server: Server, api: Api) -> None:
    production = _production_key(api)
    with Api.for_key(server.url, production["id"], production["key"]) as client:
        assert_error(client.request("PUT", "/anonymous-access", {"allowAnonymousAccess": False}),
                     403, "missing-scope")  # fmt: skip
        assert_error(client.request("GET", "/anonymous-access"), 403, "missing-scope")
    assert_error(api.request("PUT", "/anonymous-access", {"allowAnonymousAccess": "no"}), 400)


# --- identity providers and token providers ---------------------------------------------------


def test_a_shared_key_identity_provider(server: Server, api: Api) -> None:
    """As `smply identity-providers upsert-supabase` configures it."""
    org = server.admin.org_id
    api.create_machine("owned", OWNED)
    key = base64.urlsafe_b64encode(SUPABASE_SECRET.encode()).decode().rstrip("=")
    mapping = {"sub.$": "$.sub", "email.$": "$.email"}
    idp = {"aud": "authenticated", "iss": SUPABASE_ISS, "algs": ["HS256"], "key": key}
    api.ok("POST", "/idps", {**idp, "mapping": mapping})
    web = _production_key(api)
    api.ok("POST", "/token-providers", {"service": "web", "keyId": web["id"],
           "mapping": {"sub.$": "$.sub", "email.$": "$.email", "app": "demo"}})  # fmt: skip
    now = int(time.time())
    subject = hs_token({"aud": "authenticated", "iss": SUPABASE_ISS, "sub": "alice",
                        "email": "a@example.com", "exp": now + 600}, SUPABASE_SECRET)  # fmt: skip
    response = exchange(server.url, org, "web", subject)
    token = access_token(response)
    assert response.json()["expires_in"] <= 600, "no longer than the subject token"
    assert _payload(token)["act"] == {"sub": "alice", "email": "a@example.com", "app": "demo"}
    assert jwt.get_unverified_header(token)["kid"] == web["id"]
    with _owned_instance(server, token, "alices", "user:alice") as alice:
        assert alice.send("owned", "alices", "inc").status_code == 200


def test_a_jwks_identity_provider_across_a_key_rotation(
    server: Server, api: Api, issuer: Issuer
) -> None:
    org = server.admin.org_id
    api.create_machine("owned", OWNED)
    _rs256_provider(api, issuer)
    first = access_token(exchange(server.url, org, "web", issuer.sign()))
    with _owned_instance(server, first, "alices", "user:alice") as alice:
        assert alice.send("owned", "alices", "inc").status_code == 200
    assert issuer.fetches == 1
    issuer.rotate()  # the old key leaves the JWKS
    second = access_token(exchange(server.url, org, "web", issuer.sign()))
    assert issuer.fetches == 2, "the unknown kid fetched the JWKS again"
    with Api(server.url, second) as alice:
        assert alice.send("owned", "alices", "inc").json()["publicContext"] == {"count": 2}
    with Api(server.url, first) as alice:  # minted tokens do not depend on the issuer's keys
        assert alice.send("owned", "alices", "inc").json()["publicContext"] == {"count": 3}


@pytest.mark.parametrize("alg", ["ES256", "PS384", "EdDSA"])
def test_other_asymmetric_algorithms(server: Server, api: Api, tls: Tls, alg: str) -> None:
    with serve_issuer(Issuer(keys=[new_key("k1", alg)]), tls) as issuer:
        _rs256_provider(api, issuer, algs=[alg])
        token = access_token(exchange(server.url, server.admin.org_id, "web", issuer.sign()))
        assert _payload(token)["act"] == {"sub": "alice"}


def _rs256_provider(api: Api, issuer: Issuer, *, algs: list[str] | None = None) -> dict[str, str]:
    idp = {"iss": issuer.url, "aud": issuer.audience, "jwksUrl": issuer.jwks_url}
    api.ok("POST", "/idps", {**idp, "algs": algs or ["RS256"], "mapping": {"sub.$": "$.sub"}})
    web = _production_key(api)
    provider = {"service": "web", "keyId": web["id"], "mapping": {"sub.$": "$.sub"}}
    api.ok("POST", "/token-providers", provider)
    return web


# --- every failure: a 4xx in State Backed's shape, and nothing minted -----------------------------


def _public_pem(issuer: Issuer) -> bytes:
    public = issuer.current.private.public_key()
    pem: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _confused(claims: dict[str, Any], public_pem: bytes) -> str:
    """The RS/HS confusion attack: HS256 keyed by the issuer's public key (which PyJWT will
    not sign, so by hand)."""
    unsigned = _unsigned(claims, {"alg": "HS256", "typ": "JWT"})[:-1]
    mac = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{_b64(mac)}"


def test_every_subject_token_failure_mints_nothing(
    server: Server, api: Api, issuer: Issuer, tls: Tls
) -> None:
    org = server.admin.org_id
    _rs256_provider(api, issuer)
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": issuer.audience, "sub": "alice", "exp": now + 600}
    stranger = new_key(issuer.current.kid)  # same kid, another key
    hs_key = base64.urlsafe_b64encode(b"h" * 32).decode().rstrip("=")
    api.ok("POST", "/idps", {"iss": "https://both.example", "algs": ["HS256", "RS256"],
                             "key": hs_key, "jwksUrl": issuer.jwks_url,
                             "mapping": {"sub.$": "$.sub"}})  # fmt: skip
    api.ok("POST", "/idps", {"iss": "https://mute.example", "algs": ["HS256"], "key": hs_key,
                             "mapping": {"email.$": "$.email"}})  # fmt: skip
    web = next(k for k in api.ok("GET", "/keys")["keys"] if k["name"] == "web")
    api.ok("POST", "/token-providers", {"service": "nothing", "keyId": web["id"],
                                        "mapping": {"x.$": "$.not_extracted"}})  # fmt: skip
    with serve_issuer(Issuer(), tls) as gone:
        unreachable = gone.jwks_url
    api.ok("POST", "/idps", {"iss": "https://down.example", "algs": ["RS256"],
                             "jwksUrl": unreachable, "mapping": {"sub.$": "$.sub"}})  # fmt: skip
    with serve_issuer(Issuer(mode="malformed"), tls) as broken:
        broken_idp = {"iss": "https://broken.example", "jwksUrl": broken.jwks_url}
        api.ok("POST", "/idps", {**broken_idp, "algs": ["RS256"], "mapping": {"sub.$": "$.sub"}})
        cases: dict[str, tuple[str, str, str, str]] = {
            # name: (service, subject token, expected code, words in the message)
            "JWKS unreachable": ("web", issuer.sign({**claims, "iss": "https://down.example"}),
                                 "jwks-unavailable", "could not be fetched"),
            "JWKS malformed": ("web", issuer.sign({**claims, "iss": "https://broken.example"}),
                               "jwks-unavailable", "did not answer JSON"),
            "unknown issuer": ("web", issuer.sign({**claims, "iss": "https://evil.example"}),
                               "unknown-identity-provider", "no identity provider"),
            "wrong audience": ("web", issuer.sign({**claims, "aud": "someone-else"}),
                               "unknown-identity-provider", "no identity provider"),
            "bad signature": ("web", issuer.sign(claims, key=stranger),
                              "invalid-subject-token", "signature does not verify"),
            "tampered payload": ("web", _tampered(issuer.sign(claims)),
                                 "invalid-subject-token", "signature does not verify"),
            "expired": ("web", issuer.sign({**claims, "exp": now - 3600}),
                        "invalid-subject-token", "expired"),
            "no expiry": ("web", issuer.sign({"sub": "alice"}, expires_in=None),
                          "invalid-subject-token", "exp"),
            "not yet valid": ("web", issuer.sign({**claims, "nbf": now + 3600}),
                              "invalid-subject-token", "not valid yet"),
            "issued in the future": ("web", issuer.sign({**claims, "iat": now + 3600}),
                                     "invalid-subject-token", "not valid yet"),
            "alg none": ("web", _unsigned(claims, {"alg": "none", "kid": issuer.current.kid}),
                         "invalid-subject-token", "'none' is not allowed"),
            "HS256 for an RS256 provider (RS/HS confusion)": (
                "web", _confused(claims, _public_pem(issuer)),
                "invalid-subject-token", "'HS256' is not allowed"),
            "HS256 signed with the public key where HS256 is allowed": (
                "web", _confused({**claims, "iss": "https://both.example"}, _public_pem(issuer)),
                "invalid-subject-token", "signature does not verify"),
            "RS512 where only RS256 is allowed": (
                "web", jwt.encode(claims, issuer.current.private, algorithm="RS512",
                                  headers={"kid": issuer.current.kid}),
                "invalid-subject-token", "'RS512' is not allowed"),
            "unknown kid": ("web", issuer.sign(claims, key=new_key("made-up")),
                            "invalid-subject-token", "no RS256 key"),
            "not a JWT": ("web", "not.a.jwt", "invalid-subject-token", "not a JWT"),
            "identity provider mapping yields no claims": (
                "web", hs_token({**claims, "iss": "https://mute.example"}, b"h" * 32),
                "empty-claims", "identity provider's mapping"),
            "token provider mapping yields no claims": (
                "nothing", issuer.sign(claims), "empty-claims", "token provider's mapping"),
            "unknown token provider": ("mobile", issuer.sign(claims),
                                       "unknown-token-provider", "'mobile'"),
            "anonymous token without a session": (
                ANONYMOUS, anonymous_token(org, None), "invalid-subject-token", "sid"),
            "anonymous token signed with another key": (
                ANONYMOUS, anonymous_token(org, key="org_other"),
                "invalid-subject-token", "signature"),
            "anonymous token for another audience": (
                ANONYMOUS, anonymous_token(org, aud="https://elsewhere"),
                "invalid-subject-token", "audience"),
            "anonymous token expired": (
                ANONYMOUS, anonymous_token(org, expires_in=-3600), "invalid-subject-token",
                "expired"),
            "anonymous token as RS256": (
                ANONYMOUS, jwt.encode({"sid": "s", "exp": now + 60}, issuer.current.private,
                                      algorithm="RS256"),
                "invalid-subject-token", "not allowed"),
        }  # fmt: skip
        keys_before = api.ok("GET", "/keys")["keys"]
        failures = []
        for name, (service, token, code, words) in cases.items():
            response = exchange(server.url, org, service, token)
            body = response.json()
            if (response.status_code, body.get("code")) != (403, code) or words not in body.get(
                "error", ""
            ) or "access_token" in body:
                failures.append(f"{name}: {response.status_code} {body}")
        assert not failures, "\n".join(failures)
    assert [k["id"] for k in api.ok("GET", "/keys")["keys"]] == [k["id"] for k in keys_before]


def _tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{forged}.{signature}"


def test_a_token_provider_whose_key_was_deleted_refuses(
    server: Server, api: Api, issuer: Issuer
) -> None:
    web = _rs256_provider(api, issuer)
    assert api.request("DELETE", f"/keys/{web['id']}").status_code == 204
    refused = exchange(server.url, server.admin.org_id, "web", issuer.sign())
    assert_error(refused, 403, "token-provider-key-missing")
    assert web["id"] in refused.json()["error"]


def test_an_org_that_does_not_exist_has_no_token_providers(server: Server) -> None:
    ghost = "org_AAAAAAAAAAAAAAAAAAAAAA"
    for service in (ANONYMOUS, "web"):
        token = anonymous_token(ghost)
        assert_error(exchange(server.url, ghost, service, token), 403, "unknown-token-provider")


def _form(**fields: str) -> dict[str, str]:
    return {"grant_type": GRANT, "requested_token_type": ACCESS, "subject_token": "x.y.z",
            "audience": audience("org_AAAAAAAAAAAAAAAAAAAAAA", "web"), **fields}  # fmt: skip


def test_malformed_and_oversized_forms(server: Server) -> None:
    base = _form()
    too_many = "&".join(f"f{n}=1" for n in range(40))
    cases: dict[str, tuple[Any, dict[str, str], int, str]] = {
        # name: (body, headers, status, parameter)
        "JSON instead of a form": (json.dumps(base), {"content-type": "application/json"},
                                   400, "content-type"),
        "no content type": (b"grant_type=x", {"content-type": ""}, 400, "content-type"),
        "not ASCII": ("grant_type=é".encode(), {}, 400, "body"),
        "bad percent-encoding": (b"grant_type=%ff%fe", {}, 400, "body"),
        "a field without =": (b"grant_type", {}, 400, "body"),
        "too many fields": (too_many.encode(), {}, 400, "body"),
        "duplicate field": (httpx.QueryParams([*base.items(), ("audience", "x")]).__str__(),
                            {}, 400, "audience"),
        "empty body": (b"", {}, 400, "grant_type"),
        "missing grant_type": ({k: v for k, v in base.items() if k != "grant_type"}, {}, 400,
                               "grant_type"),
        "another grant_type": (_form(grant_type="client_credentials"), {}, 400, "grant_type"),
        "another requested type": (_form(requested_token_type="urn:x"), {}, 400,
                                   "requested_token_type"),
        "another subject type": (_form(subject_token_type="urn:saml"), {}, 400,
                                 "subject_token_type"),
        "missing subject_token": ({k: v for k, v in base.items() if k != "subject_token"}, {},
                                  400, "subject_token"),
        "missing audience": ({k: v for k, v in base.items() if k != "audience"}, {}, 400,
                             "audience"),
        "audience of another host": (_form(audience="https://evil.example/org_x/web"), {}, 400,
                                     "audience"),
        "audience without service": (_form(audience="https://tokens.statebacked.dev/org_x"), {},
                                     400, "audience"),
        "audience with a bad org": (_form(audience=audience("org_short", "web")), {}, 400,
                                    "audience"),
        "audience with a bad service": (_form(audience=audience("org_AAAAAAAAAAAAAAAAAAAAAA",
                                                                "a/b")), {}, 400, "audience"),
        "over the token request limit": (_form(subject_token="x" * 70_000), {}, 413, "body"),
        "over the body limit": (b"x" * 1_100_000, {}, 413, "body"),
    }  # fmt: skip
    failures = []
    for name, (body, headers, status, parameter) in cases.items():
        response = post_form(server.url, body, **headers)
        got = response.json()
        expected_code = "payload-too-large" if status == 413 else "invalid-parameter"
        if (response.status_code, got.get("code"), got.get("parameter")) != (
            status, expected_code, parameter
        ) or not got.get("error"):  # fmt: skip
            failures.append(f"{name}: {response.status_code} {got}")
    assert not failures, "\n".join(failures)


def test_tokens_needs_no_bearer_and_ignores_one(server: Server) -> None:
    org = server.admin.org_id
    token = anonymous_token(org)
    form = {"grant_type": GRANT, "audience": audience(org, ANONYMOUS), "subject_token": token}
    response = post_form(server.url, form, authorization="Bearer garbage")
    access_token(response)
