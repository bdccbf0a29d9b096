"""Issuers' JWKS: fetched over HTTPS from a local issuer whose CA the fetcher is given, cached,
fetched again on an unknown kid, and never more than once per interval per URL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from api.identity.jwks import JwksCache, JwksFetcher, check_url
from runtime.errors import AuthError, InvalidRequestError
from tests.support.issuer import Issuer, Tls, new_key, serve_issuer

MIN_REFRESH_S = 10.0
MAX_AGE_S = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def issuer(tls: Tls) -> Iterator[Issuer]:
    with serve_issuer(Issuer(), tls) as served:
        yield served


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tls: Tls, clock: Clock) -> JwksCache:
    fetcher = JwksFetcher(timeout_s=5, max_bytes=100_000, ca_file=str(tls.ca_file))
    return JwksCache(fetcher, max_age_s=MAX_AGE_S, min_refresh_s=MIN_REFRESH_S, now=clock)


def test_keys_are_fetched_once_and_cached(cache: JwksCache, issuer: Issuer) -> None:
    for _ in range(20):
        key = cache.key_for(issuer.jwks_url, "key-1", "RS256")
    assert key.key_id == "key-1"
    assert issuer.fetches == 1


def test_an_unknown_kid_fetches_again_after_a_rotation(
    cache: JwksCache, issuer: Issuer, clock: Clock
) -> None:
    cache.key_for(issuer.jwks_url, "key-1", "RS256")
    rotated = issuer.rotate()
    clock.now += MIN_REFRESH_S
    assert cache.key_for(issuer.jwks_url, rotated.kid, "RS256").key_id == rotated.kid
    assert issuer.fetches == 2


def test_a_flood_of_unknown_kids_fetches_once_per_interval(
    cache: JwksCache, issuer: Issuer, clock: Clock
) -> None:
    cache.key_for(issuer.jwks_url, "key-1", "RS256")
    for n in range(200):
        with pytest.raises(AuthError, match="no RS256 key") as raised:
            cache.key_for(issuer.jwks_url, f"made-up-{n}", "RS256")
        assert raised.value.code == "invalid-subject-token"
    assert issuer.fetches == 1, "each made-up kid within the interval reuses the last fetch"
    clock.now += MIN_REFRESH_S
    with pytest.raises(AuthError):
        cache.key_for(issuer.jwks_url, "made-up-again", "RS256")
    assert issuer.fetches == 2
    # the known key keeps working throughout, without fetching
    assert cache.key_for(issuer.jwks_url, "key-1", "RS256").key_id == "key-1"
    assert issuer.fetches == 2


def test_keys_older_than_the_max_age_are_fetched_again(
    cache: JwksCache, issuer: Issuer, clock: Clock
) -> None:
    cache.key_for(issuer.jwks_url, "key-1", "RS256")
    clock.now += MAX_AGE_S
    cache.key_for(issuer.jwks_url, "key-1", "RS256")
    assert issuer.fetches == 2


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("malformed", "did not answer JSON"),
        ("not-jwks", "did not answer a JWKS"),
        ("error", "answered HTTP 500"),
    ],
)
def test_a_broken_jwks_is_unavailable_and_not_hammered(
    cache: JwksCache, issuer: Issuer, clock: Clock, mode: str, message: str
) -> None:
    issuer.mode = mode
    for _ in range(5):
        with pytest.raises(AuthError, match=message) as raised:
            cache.key_for(issuer.jwks_url, "key-1", "RS256")
        assert raised.value.code == "jwks-unavailable"
    assert issuer.fetches == 1
    issuer.mode = "ok"
    clock.now += MIN_REFRESH_S
    assert cache.key_for(issuer.jwks_url, "key-1", "RS256").key_id == "key-1"


def test_fetched_keys_keep_serving_while_the_issuer_is_down(
    cache: JwksCache, issuer: Issuer, clock: Clock
) -> None:
    cache.key_for(issuer.jwks_url, "key-1", "RS256")
    issuer.mode = "error"
    clock.now += MAX_AGE_S
    assert cache.key_for(issuer.jwks_url, "key-1", "RS256").key_id == "key-1"
    assert issuer.fetches == 2


def test_an_unreachable_jwks_is_unavailable(cache: JwksCache, tls: Tls) -> None:
    with serve_issuer(Issuer(), tls) as gone:
        url = gone.jwks_url
    with pytest.raises(AuthError, match="could not be fetched") as raised:
        cache.key_for(url, "key-1", "RS256")
    assert raised.value.code == "jwks-unavailable"


def test_an_issuer_whose_certificate_is_not_trusted_is_unavailable(
    issuer: Issuer, clock: Clock
) -> None:
    untrusting = JwksCache(
        JwksFetcher(timeout_s=5, max_bytes=100_000), max_age_s=60, min_refresh_s=1, now=clock
    )
    with pytest.raises(AuthError, match="could not be fetched"):
        untrusting.key_for(issuer.jwks_url, "key-1", "RS256")
    assert issuer.fetches == 0, "the TLS handshake failed before any request"


def test_plain_http_is_never_fetched(cache: JwksCache, issuer: Issuer) -> None:
    plain = issuer.jwks_url.replace("https://", "http://")
    with pytest.raises(AuthError, match="not https"):
        cache.key_for(plain, "key-1", "RS256")
    assert issuer.fetches == 0


def test_a_jwks_larger_than_the_limit_is_refused(tls: Tls, issuer: Issuer, clock: Clock) -> None:
    small = JwksFetcher(timeout_s=5, max_bytes=100, ca_file=str(tls.ca_file))
    cache = JwksCache(small, max_age_s=60, min_refresh_s=1, now=clock)
    with pytest.raises(AuthError, match="larger than 100 bytes"):
        cache.key_for(issuer.jwks_url, "key-1", "RS256")


def test_a_key_is_used_only_for_an_algorithm_it_fits(cache: JwksCache, issuer: Issuer) -> None:
    # key-1 is an RSA key published for RS256: not for PS256, ES256, or HMAC's sake
    for alg in ("PS256", "ES256", "EdDSA"):
        with pytest.raises(AuthError, match=f"no {alg} key"):
            cache.key_for(issuer.jwks_url, "key-1", alg)


def test_symmetric_keys_in_a_jwks_are_ignored(
    cache: JwksCache, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    oct_key = {"kty": "oct", "kid": "shared", "k": "c2VjcmV0", "alg": "HS256"}
    monkeypatch.setattr(issuer, "document", lambda: b'{"keys": [%s]}' % _json(oct_key))
    with pytest.raises(AuthError, match="no HS256 key"):
        cache.key_for(issuer.jwks_url, "shared", "HS256")


def test_a_token_without_kid_uses_the_only_fitting_key(
    cache: JwksCache, issuer: Issuer, tls: Tls
) -> None:
    assert cache.key_for(issuer.jwks_url, None, "RS256").key_id == "key-1"
    issuer.keys.append(new_key("key-2"))
    fetcher = JwksFetcher(timeout_s=5, max_bytes=100_000, ca_file=str(tls.ca_file))
    fresh = JwksCache(fetcher, max_age_s=60, min_refresh_s=1)
    with pytest.raises(AuthError, match="no kid"):
        fresh.key_for(issuer.jwks_url, None, "RS256")


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "PS256", "EdDSA"])
def test_every_asymmetric_family_is_served(cache: JwksCache, tls: Tls, alg: str) -> None:
    with serve_issuer(Issuer(keys=[new_key("k", alg)]), tls) as issuer:
        assert cache.key_for(issuer.jwks_url, "k", alg).key_id == "k"


def test_urls_that_are_not_https_are_refused_at_upsert() -> None:
    check_url("https://issuer.example/.well-known/jwks.json")
    for url in ("http://issuer.example/jwks.json", "file:///etc/passwd", "https:///nohost"):
        with pytest.raises(InvalidRequestError):
            check_url(url)


def _json(value: object) -> bytes:
    return json.dumps(value).encode()
