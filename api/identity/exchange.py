"""`POST /tokens`: RFC 8693 token exchange, as `@statebacked/client` sends it.

    grant_type=urn:ietf:params:oauth:grant-type:token-exchange
    audience=https://tokens.statebacked.dev/<orgId>/<service>
    requested_token_type=urn:ietf:params:oauth:token-type:access_token   (optional)
    subject_token=<the identity provider's JWT>

In order, cheapest first, so that a bad request costs no key lookup and no issuer fetch:
the form; the audience's token provider (or the built-in anonymous one); the subject token's
identity provider, found by its `aud`/`iss` (the most specific match); its signature and
claims; the identity provider's mapping, then the token provider's; the signing key. Each
failure is an error in State Backed's shape — 400 for a malformed form, 413 for an oversized
one, 403 with a specific code for everything about the token — and nothing is minted.

The minted token expires after `ttl_s`, or when the subject token does if that is sooner.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from api import ids
from api.auth import Authenticator
from api.identity import anonymous, minting, subject
from api.identity.jwks import JwksCache
from api.identity.mapping import Mapping, compile_mapping
from api.identity.providers import IdentityProviders, TokenProviders
from api.identity.subject import IdpConfig
from api.schemas import SLUG_PATTERN
from runtime.clock import Clock
from runtime.errors import AuthError, InvalidRequestError, PayloadTooLargeError

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = {
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
    ACCESS_TOKEN_TYPE,
}
AUDIENCE_PREFIX = "https://tokens.statebacked.dev/"
FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 16

UNKNOWN_IDENTITY_PROVIDER = "unknown-identity-provider"
EMPTY_CLAIMS = "empty-claims"
SIGNING_KEY_MISSING = "token-provider-key-missing"


@dataclass(frozen=True)
class ExchangeRequest:
    org: str  # as the audience spells it: the anonymous service's HMAC key
    org_id: uuid.UUID
    service: str
    subject_token: str

    @property
    def audience(self) -> str:
        return f"{AUDIENCE_PREFIX}{self.org}/{self.service}"


@dataclass(frozen=True)
class Minted:
    access_token: str
    expires_in: int


def parse_request(body: bytes, content_type: str | None, *, limit: int) -> ExchangeRequest:
    """The exchange request in a form body, or `InvalidRequestError`."""
    if len(body) > limit:
        raise PayloadTooLargeError(
            f"a token exchange body is at most {limit} bytes", parameter="body"
        )
    if (content_type or "").split(";")[0].strip().lower() != FORM:
        raise InvalidRequestError(
            f"POST /tokens takes an {FORM} body (RFC 8693)", parameter="content-type"
        )
    form = _fields(body)
    if form.get("grant_type") != GRANT_TYPE:
        raise InvalidRequestError(f"grant_type must be {GRANT_TYPE}", parameter="grant_type")
    for name in ("requested_token_type", "requested_token-type"):  # the spec misspells it
        if form.get(name, ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"{name} must be {ACCESS_TOKEN_TYPE}", parameter=name)
    if form.get("subject_token_type", ACCESS_TOKEN_TYPE) not in SUBJECT_TOKEN_TYPES:
        raise InvalidRequestError(
            "subject_token_type must name a JWT", parameter="subject_token_type"
        )
    token = form.get("subject_token", "")
    if not token:
        raise InvalidRequestError("subject_token is required", parameter="subject_token")
    org, org_id, service = _audience(form.get("audience", ""))
    return ExchangeRequest(org, org_id, service, token)


def _fields(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequestError(f"the body is not a valid form: {exc}", parameter="body") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequestError(f"{name} appears more than once", parameter=name)
        form[name] = value
    return form


def _audience(audience: str) -> tuple[str, uuid.UUID, str]:
    org, _, service = audience.removeprefix(AUDIENCE_PREFIX).partition("/")
    org_id = ids.decode("org", org) if audience.startswith(AUDIENCE_PREFIX) else None
    if org_id is None or ids.encode("org", org_id) != org or not _is_slug(service):
        raise InvalidRequestError(
            f"audience must be {AUDIENCE_PREFIX}<orgId>/<token provider service>",
            parameter="audience",
        )
    return org, org_id, service


def _is_slug(text: str) -> bool:
    return re.fullmatch(SLUG_PATTERN, text) is not None


class TokenExchange:
    def __init__(
        self,
        *,
        auth: Authenticator,
        idps: IdentityProviders,
        token_providers: TokenProviders,
        anonymous_keys: anonymous.AnonymousKeys,
        jwks: JwksCache,
        clock: Clock,
        ttl_s: int,
        leeway_s: float,
    ):
        self._auth = auth
        self._idps = idps
        self._token_providers = token_providers
        self._anonymous = anonymous_keys
        self._jwks = jwks
        self._clock = clock
        self._ttl_s = ttl_s
        self._leeway_s = leeway_s

    def exchange(self, request: ExchangeRequest) -> Minted:
        """A backstate access token for the subject token, or an error (blocking)."""
        signing_key, mapping = self._token_provider(request)
        header, unverified = subject.unverified(request.subject_token)
        idp = self._identity_provider(request, unverified)
        claims = subject.verify(
            request.subject_token, header, idp, self._jwks, leeway_s=self._leeway_s
        )
        if request.service == anonymous.SERVICE:
            anonymous.check_session(claims)
        extracted = _mapped(idp.mapping, claims, "identity provider's")
        act = _mapped(mapping, extracted, "token provider's")
        return self._mint(request, signing_key(), act, claims.get("exp"))

    def _token_provider(
        self, request: ExchangeRequest
    ) -> tuple[Callable[[], uuid.UUID], Mapping]:
        """The token provider's signing key (found once the subject token checks out: the
        anonymous one may have to be made) and mapping."""
        if request.service == anonymous.SERVICE:
            self._anonymous.check_allowed(request.org_id)
            return partial(self._anonymous.signing_key, request.org_id), anonymous.TOKEN_MAPPING
        provider = self._token_providers.find(request.org_id, request.service)
        if provider is None:
            raise AuthError(
                f"no token provider {request.service!r} in this org",
                code=anonymous.UNKNOWN_TOKEN_PROVIDER,
            )
        key_id = provider.key_id
        return (lambda: key_id), compile_mapping(provider.mapping)

    def _identity_provider(self, request: ExchangeRequest, claims: dict[str, Any]) -> IdpConfig:
        if request.service == anonymous.SERVICE:
            return anonymous.identity_provider(request.org)
        configs = self._idps.configs(
            request.org_id, subject.audiences(claims), subject.issuer(claims)
        )
        if not configs:
            iss, aud = claims.get("iss"), claims.get("aud")
            raise AuthError(
                f"no identity provider of this org accepts tokens with iss={iss!r}, aud={aud!r}",
                code=UNKNOWN_IDENTITY_PROVIDER,
            )
        return configs[0]

    def _mint(
        self, request: ExchangeRequest, key_id: uuid.UUID, act: dict[str, Any], subject_exp: Any
    ) -> Minted:
        pretty = ids.encode("sbk", key_id)
        try:
            key = self._auth.opened_key(key_id)
        except AuthError as exc:
            raise AuthError(
                f"token provider {request.service!r} signs with key {pretty}, which no longer "
                "exists: upsert it with another key",
                code=SIGNING_KEY_MISSING,
            ) from exc
        if key.org_id != request.org_id:
            raise AuthError(f"key {pretty} is not a key of this org", code=SIGNING_KEY_MISSING)
        now_s = self._clock.now_ms() // 1000
        ttl_s = self._ttl_s
        if isinstance(subject_exp, int | float):
            ttl_s = min(ttl_s, int(subject_exp) - now_s)
        if ttl_s <= 0:
            raise subject.invalid("the subject token has expired")
        token = minting.mint(
            pretty, key.secret, act, issuer=request.audience, now_s=now_s, ttl_s=ttl_s
        )
        return Minted(token, ttl_s)


def _mapped(mapping: Mapping, claims: dict[str, Any], whose: str) -> dict[str, Any]:
    out = mapping.apply(claims)
    if not out:
        raise AuthError(f"the {whose} mapping yields no claims from this token", code=EMPTY_CLAIMS)
    return out
