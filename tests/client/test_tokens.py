"""Token signing compatible with @statebacked/token, and how a client obtains its token."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from backstate_client import (
    AnonymousSession,
    AsyncClient,
    Client,
    RejectedByMachineAuthorizerError,
    UnauthorizedError,
    anonymous_subject_token,
    parse_time_span,
    sign_token,
)
from backstate_client._options import Options
from backstate_client._tokens import exchange_request

from tests.client.bundles import PLAYER
from tests.client.conftest import MakeClient
from tests.compat.conftest import NODE_MODULES
from tests.conftest import Server

HERE = Path(__file__).resolve().parent
NOW_MS = 1_700_000_000_123
NOW_S = NOW_MS // 1000
SECRET = "sbsec_" + "s" * 32  # as long as real ones: PyJWT warns below 32 bytes

# Each case: what signToken is given; sign_token must make the very same token.
CASES: list[dict[str, Any]] = [
    {"keyId": "sbk_a", "secret": SECRET, "claims": {"sub": "u1"}, "expiresIn": "1h"},
    {"keyId": "sbk_a", "secret": SECRET, "claims": {}, "expiresIn": "7d"},
    {"keyId": "sbk_a", "secret": SECRET, "claims": {"sub": "u"}, "expiresIn": "1.5 hours"},
    {"keyId": "sbk_a", "secret": SECRET, "claims": {"sub": "u"}, "expiresIn": "2 weeks"},
    {"keyId": "sbk_a", "secret": SECRET, "claims": {"sub": "u"}, "expiresIn": "1y"},
    {"keyId": "sbk_a", "secret": SECRET, "claims": {"sub": "u"}, "expiresIn": "90 S"},
    {"keyId": "sbk_a", "secret": SECRET, "claims": {"sub": "u"}, "expiresIn": "0.5m"},
    {"keyId": "sbk_k", "secret": SECRET + "_other", "expiresAt": NOW_S + 60,
     "claims": {"sub": "u", "roles": ["a", "b"], "n": 3, "nested": {"x": None, "ok": True}},
     "issuer": "https://example.com/"},
    {"keyId": "sbk_a", "secret": SECRET, "claims": {"sub": "Zoë 🎉"}, "expiresIn": "5m"},
]  # fmt: skip


def official(cases: list[dict[str, Any]], anonymous: dict[str, Any]) -> dict[str, Any]:
    if shutil.which("node") is None or not NODE_MODULES.is_dir():
        pytest.skip("needs node and tests/compat/node_modules (make setup)")
    payload = json.dumps({"nowMs": NOW_MS, "cases": cases, "anonymous": anonymous})
    done = subprocess.run(
        ["node", str(HERE / "official_tokens.mjs"), payload],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def ours(case: dict[str, Any]) -> str:
    return sign_token(
        case["keyId"], case["secret"], case["claims"],
        expires_in=case.get("expiresIn"), expires_at=case.get("expiresAt"),
        issuer=case.get("issuer"), now=NOW_MS / 1000,
    )  # fmt: skip


def test_sign_token_makes_the_official_token_byte_for_byte() -> None:
    theirs = official(CASES, {"orgId": "org_x", "sessionId": "s"})["tokens"]
    assert [ours(case) for case in CASES] == theirs


def test_official_tokens_verify_as_ours_do() -> None:
    """Decoded and verified by PyJWT (as the server verifies them), header and claims agree."""
    theirs = official(CASES, {"orgId": "org_x", "sessionId": "s"})["tokens"]
    for case, token in zip(CASES, theirs, strict=True):
        for made in (token, ours(case)):
            header = jwt.get_unverified_header(made)
            claims = jwt.decode(
                made, case["secret"].encode(), algorithms=["HS256"],
                audience="https://api.statebacked.dev/", options={"verify_exp": False},
            )  # fmt: skip
            assert header == {"alg": "HS256", "kid": case["keyId"]}
            assert claims["act"] == case["claims"] and claims["iat"] == NOW_S
            assert claims["iss"] == case.get("issuer", f"https://{case['keyId']}.client.statebacked.dev/")


def test_anonymous_subject_token_and_exchange_request_are_the_official_ones() -> None:
    """The subject token the official client signs for an anonymous session, and the
    `POST /tokens` it sends, are ours byte for byte (headers and form fields)."""
    anonymous = {"orgId": "org_anon", "sessionId": "sess-1", "actAs": {"sub": "a"}}
    theirs = official([], anonymous)["exchange"]
    form = parse_qs(theirs["body"])
    ours = anonymous_subject_token("org_anon", "sess-1", "sess-1", now=NOW_S)
    assert form["subject_token"] == [ours]
    request = Options.make("http://h", "org_anon", {"sub": "a"}, 300).http_request(
        exchange_request("org_anon", "anonymous-statebacked-dev", form["subject_token"][0]), None
    )
    assert str(request.url) == theirs["url"] and request.method == theirs["method"]
    assert parse_qs(request.content.decode()) == form
    transport = {"host", "content-length"}  # set by every HTTP client, not by the caller
    sent = {name: value for name, value in request.headers.items() if name not in transport}
    assert sent == theirs["headers"]  # no authorization header; org and act as configured
    with_device = official([], {"orgId": "org_anon", "sessionId": "s2", "deviceId": "d2"})
    expected = anonymous_subject_token("org_anon", "s2", "d2", now=NOW_S)
    assert parse_qs(with_device["exchange"]["body"])["subject_token"] == [expected]


def test_time_spans() -> None:
    assert parse_time_span("1h") == 3600 and parse_time_span("2 Days") == 172800
    assert parse_time_span("1y") == 31557600 and parse_time_span("0.5s") == 1  # half up
    for bad in ["", "1", "h", "-1h", "1 fortnight", "1h ", " 1h", "1  h"]:
        with pytest.raises(ValueError, match="invalid time span"):
            parse_time_span(bad)
    with pytest.raises(ValueError, match="expires_in or expires_at"):
        sign_token("sbk_a", "sbsec_b", {})


def test_server_accepts_our_tokens_and_reads_their_claims(
    make_client: MakeClient, server: Server
) -> None:
    admin = server.admin
    deployer = make_client(token=sign_token(admin.key_id, admin.secret, {}, expires_in="10m"))
    deployer.machines.create("player")
    deployer.machine_versions.create("player", PLAYER, make_current=True)
    alice_token = sign_token(admin.key_id, admin.secret, {"sub": "alice"}, expires_in=600)
    alice = make_client(token=alice_token)
    alice.machine_instances.create("player", "a", context={"owner": "alice"})
    assert alice.machine_instances.get("player", "a")["state"] == "idle"
    bob = make_client(token=sign_token(admin.key_id, admin.secret, {"sub": "bob"}, expires_in="1h"))
    with pytest.raises(RejectedByMachineAuthorizerError):  # the authorizer saw act.sub
        bob.machine_instances.get("player", "a")


def test_token_functions_are_cached_until_near_expiry(server: Server) -> None:
    admin, calls = server.admin, []

    def fresh(lifetime_s: int) -> Any:
        def token() -> str:
            calls.append(lifetime_s)
            return sign_token(admin.key_id, admin.secret, {}, expires_in=lifetime_s)

        return token

    with Client(fresh(3600), api_host=server.url) as client:
        for _ in range(3):
            client.machines.list()
    assert calls == [3600]
    calls.clear()
    # Within the refresh margin (5 s) of its exp, a token is replaced before each request.
    with Client(fresh(3), api_host=server.url) as client:
        for _ in range(3):
            client.machines.list()
    assert calls == [3, 3, 3]


def test_a_failing_token_function_is_an_unauthorized_error(server: Server) -> None:
    def broken() -> str:
        raise RuntimeError("identity provider down")

    with Client(broken, api_host=server.url) as client, pytest.raises(UnauthorizedError) as failed:
        client.machines.list()
    assert str(failed.value) == "failed to retrieve token"
    assert isinstance(failed.value.__cause__, RuntimeError)

    async def later() -> str:
        return "never"

    with Client(later, api_host=server.url) as client, pytest.raises(UnauthorizedError) as wrong:
        client.machines.list()
    assert "AsyncClient" in str(wrong.value.__cause__)


def test_concurrent_requests_share_one_token_fetch(server: Server) -> None:
    admin, calls = server.admin, []
    started = threading.Event()

    def slow() -> str:
        calls.append(1)
        started.wait(5)  # hold the fetch until every request is waiting on it
        return sign_token(admin.key_id, admin.secret, {}, expires_in="1h")

    with Client(slow, api_host=server.url) as client:
        threads = [threading.Thread(target=client.machines.list) for _ in range(4)]
        for thread in threads:
            thread.start()
        started.set()
        for thread in threads:
            thread.join(60)
    assert calls == [1]

    async def async_token() -> str:
        calls.append(2)
        await asyncio.sleep(0)
        return sign_token(admin.key_id, admin.secret, {}, expires_in="1h")

    async def main() -> None:
        async with AsyncClient(async_token, api_host=server.url) as client:
            pages = await asyncio.gather(*[client.machines.list() for _ in range(4)])
            assert pages == [{"machines": []}] * 4

    asyncio.run(main())
    assert calls == [1, 2]


# The HMAC key of an anonymous subject token is the org id, by the protocol: short, and known.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_anonymous_session_ids() -> None:
    """The default session id is one per process; the device id defaults to the session."""
    subjects: list[str] = []

    def capture(request: httpx.Request) -> httpx.Response:
        subjects.append(parse_qs(request.content.decode())["subject_token"][0])
        return httpx.Response(200, json={"access_token": "a.e30.b"})

    def claims_of(session: AnonymousSession) -> dict[str, Any]:
        http = httpx.Client(transport=httpx.MockTransport(capture))
        with Client(session, api_host="http://h", http_client=http) as client:
            client.token()
        return jwt.decode(subjects[-1], session.org_id.encode(), algorithms=["HS256"],
                          audience=f"https://{session.org_id}.anonymous.auth.statebacked.dev")

    first = claims_of(AnonymousSession("org_a"))
    second = claims_of(AnonymousSession("org_a"))
    assert first["sid"] == second["sid"] == first["did"] and first["sid"]
    assert first["exp"] - first["iat"] == 86400
    chosen = claims_of(AnonymousSession("org_a", session_id=lambda: "s", device_id="d"))
    assert (chosen["sid"], chosen["did"]) == ("s", "d")
    assert time.time() - 60 < chosen["iat"] <= time.time()
