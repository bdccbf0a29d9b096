"""Helpers for token-exchange tests: subject tokens as the official client and identity
providers make them, the exchange request as the client sends it, and a machine whose
authorizers let only the instance's owner in."""

from __future__ import annotations

import time
import warnings
from typing import Any

import httpx
import jwt

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ANONYMOUS = "anonymous-statebacked-dev"

# The owner is who created the instance: an anonymous session (sid and device) or a user.
OWNED = """
import { createMachine, assign } from "xstate";
const who = (a) => a.auth === "anonymous" ? `anon:${a.sid}:${a.did}` : `user:${a.sub}`;
export default createMachine({
  id: "owned",
  predictableActionArguments: true,
  initial: "idle",
  context: { owner: null, count: 0, public: { count: 0 } },
  states: {
    idle: {
      on: {
        inc: {
          actions: assign((ctx) => ({ count: ctx.count + 1, public: { count: ctx.count + 1 } })),
        },
      },
    },
  },
});
export const allowRead = ({ context, authContext }) => who(authContext) === context.owner;
export const allowWrite = ({ context, authContext }) => who(authContext) === context.owner;
"""


def anonymous_owner(sid: str, did: str | None = None) -> str:
    return f"anon:{sid}:{did or sid}"


def anonymous_token(
    org: str,
    sid: str | None = "session-1",
    *,
    did: str | None = None,
    key: str | None = None,
    expires_in: int = 86400,
    **overrides: Any,
) -> str:
    """The subject token `@statebacked/client` signs for `{anonymous: {orgId}}`."""
    scope = f"https://{org}.anonymous.auth.statebacked.dev"
    now = int(time.time())
    claims: dict[str, Any] = {"aud": scope, "iss": scope, "iat": now, "exp": now + expires_in}
    if sid is not None:
        claims.update(sid=sid, did=did or sid)
    claims.update(overrides)
    return hs_token(claims, key or org)


def hs_token(claims: dict[str, Any], key: str | bytes, alg: str = "HS256") -> str:
    secret = key.encode() if isinstance(key, str) else key
    with warnings.catch_warnings():  # short HMAC keys are the contract's (the org id)
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm=alg, headers={"typ": "JWT"})


def audience(org: str, service: str) -> str:
    return f"https://tokens.statebacked.dev/{org}/{service}"


def exchange(base_url: str, org: str, service: str, token: str) -> httpx.Response:
    """`tokens.exchange` as the client sends it: a form, no authorization header."""
    form = {
        "grant_type": GRANT,
        "audience": audience(org, service),
        "requested_token_type": ACCESS,
        "subject_token": token,
    }
    return post_form(base_url, form)


def post_form(base_url: str, form: dict[str, str] | str | bytes, **headers: str) -> httpx.Response:
    all_headers = {"content-type": "application/x-www-form-urlencoded", **headers}
    if isinstance(form, dict):
        return httpx.post(f"{base_url}/tokens", data=form, headers=all_headers, timeout=30)
    return httpx.post(f"{base_url}/tokens", content=form, headers=all_headers, timeout=30)


def access_token(response: httpx.Response) -> str:
    assert response.status_code == 200, (response.status_code, response.text)
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["issued_token_type"] == ACCESS
    token: str = body["access_token"]
    return token
