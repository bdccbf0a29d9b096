"""Verifying a subject token (the identity provider's JWT) against one identity provider.

The algorithm is the token's own `alg`, and it must be one the provider allows; its family
decides where the key comes from, never the token: HS256/384/512 use the provider's shared
key, RS*/PS*/ES*/EdDSA a key of the provider's JWKS fitting that algorithm (`jwks.py`). So
`alg: none` never verifies, and no RS/HS confusion is possible: a public key is never used as
an HMAC secret. Header parameters that point elsewhere (`jku`, `x5u`, `jwk`) are ignored.

The signature is checked by a `PyJWS` of our own whose HMAC does not warn about short keys
(anonymous sessions are HMAC-keyed by the org id, as the official client signs them); the
claims then by PyJWT: `exp` required, `nbf`/`iat` honoured, and the provider's `aud`/`iss`
when it has them, all with the server's token leeway.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from api.identity.jwks import ASYMMETRIC_ALGS, JwksCache
from api.identity.mapping import Mapping
from runtime.errors import AuthError

INVALID_SUBJECT_TOKEN = "invalid-subject-token"
HMAC_ALGS = frozenset({"HS256", "HS384", "HS512"})
SUPPORTED_ALGS = HMAC_ALGS | ASYMMETRIC_ALGS


@dataclass(frozen=True)
class IdpConfig:
    """An identity provider as verification needs it ("" = aud/iss not configured)."""

    aud: str
    iss: str
    algs: frozenset[str]
    hmac_key: bytes | None
    jwks_url: str | None
    mapping: Mapping

    def describe(self) -> str:
        return " ".join(f"{k}={v!r}" for k, v in (("iss", self.iss), ("aud", self.aud)) if v)


class _IssuerKeyedHmac(HMACAlgorithm):
    """HMAC whose key length is the issuer's business, not a warning per token."""

    def check_key_length(self, key: bytes) -> str | None:
        return None


def _signatures() -> jwt.PyJWS:
    jws = jwt.PyJWS(algorithms=sorted(ASYMMETRIC_ALGS))
    digests = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    for alg, digest in digests.items():
        jws.register_algorithm(alg, _IssuerKeyedHmac(digest))
    return jws


_SIGNATURES = _signatures()


def invalid(message: str) -> AuthError:
    return AuthError(message, code=INVALID_SUBJECT_TOKEN)


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a subject token, unverified (to find its identity provider)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise invalid(f"the subject token is not a JWT: {exc}") from exc
    if not isinstance(claims, dict):
        raise invalid("the subject token's claims are not a JSON object")
    return header, claims


def audiences(claims: dict[str, Any]) -> list[str]:
    """The token's `aud` values that could name an identity provider (unverified claims: one
    that no provider could be stored with names none, and is not sent to the database, which
    would refuse it)."""
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return [a for a in values if isinstance(a, str) and _storable(a)]


def issuer(claims: dict[str, Any]) -> str | None:
    """The token's `iss`, if it could name an identity provider (see `audiences`)."""
    iss = claims.get("iss")
    return iss if isinstance(iss, str) and _storable(iss) else None


def _storable(text: str) -> bool:
    """Text a provider's `aud`/`iss` column holds: no NUL (PostgreSQL's text refuses it, and
    the API refuses it in a provider), no lone surrogate (not UTF-8)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def verify(
    token: str, header: dict[str, Any], idp: IdpConfig, jwks: JwksCache, *, leeway_s: float
) -> dict[str, Any]:
    """The token's verified claims, or `AuthError` saying what is wrong with it."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in idp.algs:
        allowed = ", ".join(sorted(idp.algs))
        raise invalid(f"the subject token's algorithm {alg!r} is not allowed here ({allowed})")
    _check_signature(token, alg, _key(header, alg, idp, jwks))
    return _checked_claims(token, idp, leeway_s)


def _key(header: dict[str, Any], alg: str, idp: IdpConfig, jwks: JwksCache) -> jwt.PyJWK | bytes:
    if alg in HMAC_ALGS:
        if idp.hmac_key is None:
            raise invalid(f"the identity provider has no shared key for {alg}")
        return idp.hmac_key
    if idp.jwks_url is None:
        raise invalid(f"the identity provider has no jwksUrl for {alg}")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise invalid("the subject token's kid is not a string")
    return jwks.key_for(idp.jwks_url, kid, alg)


def _check_signature(token: str, alg: str, key: jwt.PyJWK | bytes) -> None:
    try:
        _SIGNATURES.decode_complete(token, key=key, algorithms=[alg])
    except jwt.InvalidSignatureError as exc:
        raise invalid("the subject token's signature does not verify") from exc
    except (jwt.InvalidTokenError, jwt.InvalidKeyError) as exc:
        raise invalid(f"the subject token cannot be verified: {exc}") from exc


def _checked_claims(token: str, idp: IdpConfig, leeway_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "verify_signature": False,  # just checked, with the key chosen above
        "verify_exp": True,
        "verify_nbf": True,
        "verify_iat": True,
        "verify_aud": bool(idp.aud),
        "verify_iss": bool(idp.iss),
        "require": ["exp"],
    }
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            options=options,  # type: ignore[arg-type]
            audience=idp.aud or None,
            issuer=idp.iss or None,
            leeway=leeway_s,
        )
    except jwt.ExpiredSignatureError as exc:
        raise invalid("the subject token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise invalid(f"the subject token is not valid yet ({exc})") from exc
    except jwt.InvalidAudienceError as exc:
        raise invalid(f"the subject token's audience is not {idp.aud!r}") from exc
    except jwt.InvalidIssuerError as exc:
        raise invalid(f"the subject token's issuer is not {idp.iss!r}") from exc
    except jwt.InvalidTokenError as exc:
        raise invalid(f"the subject token is not valid: {exc}") from exc
    return claims
