"""The claim mapping language, and minted tokens' payloads as the official client reads them."""

from __future__ import annotations

import base64
import json
import random
import string
from typing import Any

import jwt
import pytest

from api.identity.mapping import compile_mapping
from api.identity.minting import mint
from api.settings import STATEBACKED_AUDIENCE
from runtime.errors import InvalidRequestError

CLAIMS = {
    "sub": "user-1",
    "email": "a@example.com",
    "role": {"id": 7, "name": "editor"},
    "roles": ["a", "b"],
    "orgs": [{"id": "o1"}, {"id": "o2"}],
    "odd key": True,
}


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"sub.$": "$.sub"}, {"sub": "user-1"}),
        ({"service": "my-app", "n": 3, "flag": None}, {"service": "my-app", "n": 3, "flag": None}),
        ({"special": {"role.$": "$.role.id"}}, {"special": {"role": 7}}),
        ({"first.$": "$.roles[0]", "last.$": "$.roles[-1]"}, {"first": "a", "last": "b"}),
        ({"roles.$": "$.roles[*]"}, {"roles": ["a", "b"]}),
        ({"ids.$": "$.orgs[*].id"}, {"ids": ["o1", "o2"]}),
        ({"deep.$": "$..id"}, {"deep": [7, "o1", "o2"]}),
        ({"all.$": "$"}, {"all": CLAIMS}),
        ({"odd.$": '$["odd key"]'}, {"odd": True}),
        ({"role.$": "$.role"}, {"role": {"id": 7, "name": "editor"}}),
        # a path that matches nothing adds nothing; a nested object left empty is dropped
        ({"sub.$": "$.sub", "x.$": "$.missing", "n": {"y.$": "$.nope"}}, {"sub": "user-1"}),
        ({"x.$": "$.missing"}, {}),
        ({"wild.$": "$.missing[*]"}, {}),
    ],
)
def test_mapping(mapping: dict[str, Any], expected: dict[str, Any]) -> None:
    assert compile_mapping(mapping).apply(CLAIMS) == expected


@pytest.mark.parametrize(
    ("mapping", "parameter"),
    [
        ([1, 2], "mapping"),
        ({"sub.$": 3}, "mapping.sub.$"),
        ({"sub.$": "sub"}, "mapping.sub.$"),
        ({"sub.$": "$.a[?(@.x)]"}, "mapping.sub.$"),
        ({"sub.$": "$.["}, "mapping.sub.$"),
        ({".$": "$.sub"}, "mapping..$"),
        ({"a": {"b": {"c.$": "$$"}}}, "mapping.a.b.c.$"),
    ],
)
def test_invalid_mappings_name_the_entry(mapping: Any, parameter: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        compile_mapping(mapping)
    assert raised.value.parameter == parameter


def test_mappings_nest_only_so_deep() -> None:
    mapping: dict[str, Any] = {"sub.$": "$.sub"}
    for _ in range(20):
        mapping = {"n": mapping}
    with pytest.raises(InvalidRequestError, match="nests deeper"):
        compile_mapping(mapping)


def _payload(token: str) -> str:
    return token.split(".")[1]


def _atob_json(segment: str) -> Any:
    """What the official client does: `JSON.parse(atob(token.split(".")[1]))`; atob accepts
    the standard base64 alphabet only (no `-`, `_`), padding optional."""
    assert set(segment) <= set(string.ascii_letters + string.digits + "+/="), segment
    return json.loads(base64.b64decode(segment + "=" * (-len(segment) % 4)))


TRICKY = ["???", "~~~", ">>>", "\x7f\x7f\x7f", "é", "😀", "日本", "a?b>c~d", "\u2028", "\\\"'"]


def _random_claims(rng: random.Random) -> dict[str, Any]:
    def text() -> str:
        pieces = [rng.choice(TRICKY) if rng.random() < 0.3 else
                  "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 12)))
                  for _ in range(rng.randint(1, 4))]  # fmt: skip
        return "".join(pieces)

    claims: dict[str, Any] = {"sub": text()}
    for _ in range(rng.randint(0, 5)):
        claims[text()] = rng.choice([text(), rng.randint(-(10**12), 10**12), rng.random(),
                                     [text(), text()], {text(): text()}, None, True])  # fmt: skip
    return claims


def test_minted_payloads_never_contain_dash_or_underscore() -> None:
    rng = random.Random(20261122)
    secret = "sbsec_" + "k" * 43
    for n in range(5000):
        act = _random_claims(rng)
        now = 1_700_000_000 + rng.randint(0, 10**8)
        issuer = f"https://tokens.statebacked.dev/org_{n}/svc{rng.choice(TRICKY)}"
        token = mint("sbk_AAAAAAAAAAAAAAAAAAAAAA", secret, act, issuer=issuer, now_s=now,
                     ttl_s=rng.randint(1, 86400))  # fmt: skip
        payload = _payload(token)
        assert "-" not in payload and "_" not in payload, (act, payload)
        read = _atob_json(payload)
        assert read["act"] == act
        assert isinstance(read["exp"], int) and read["exp"] > now


def test_a_minted_token_is_a_key_signed_token() -> None:
    secret = "sbsec_" + "s" * 43
    token = mint("sbk_x", secret, {"sub": "u"}, issuer="https://i", now_s=10**9 * 2, ttl_s=60)
    claims = jwt.decode(token, secret.encode(), algorithms=["HS256"], audience=STATEBACKED_AUDIENCE,
                        options={"verify_exp": False, "verify_iat": False})  # fmt: skip
    assert claims == {"act": {"sub": "u"}, "aud": STATEBACKED_AUDIENCE, "exp": 2 * 10**9 + 60,
                      "iat": 2 * 10**9, "iss": "https://i"}  # fmt: skip
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "sbk_x", "typ": "JWT"}
