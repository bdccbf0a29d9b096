"""Signing in from the browser: token exchange (`POST /tokens`, RFC 8693), the identity and
token providers it is configured with, and the built-in anonymous service.

    mapping.py     the claim mapping language (`"key.$": "$.json.path"`, on jsonpath-ng)
    jwks.py        issuers' JWKS: fetched over HTTPS, cached, refreshed on an unknown kid,
                   rate-limited (the network seam is `JwksFetcher`)
    subject.py     verifying a subject token against one identity provider
    minting.py     backstate access tokens that the official client's `atob` can read
    anonymous.py   the built-in `anonymous-statebacked-dev` service and its signing key
    providers.py   `/idps` and `/token-providers`: validation, list, upsert, delete
    exchange.py    `POST /tokens`: the form, the audience, and the steps above in order

A minted token is an ordinary key-signed token (HS256, `kid` = the token provider's key), so
every later request verifies it exactly as it verifies any other: `api/auth.py` and its
per-process caches, the event route's fast path included.
"""
