"""The fetch egress policy: what a machine's fetch may reach, checked on real requests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime.engine import Runtime
from runtime.errors import EgressDeniedError
from runtime.sandbox.fetch import EgressPolicy, Fetcher
from tests.runtime.conftest import Recorder, bundle, load


@pytest.fixture
def fetchers() -> Iterator[Callable[..., Fetcher]]:
    """Builds fetchers and closes them (their pooled connections) after the test."""
    made: list[Fetcher] = []

    def make(*args: Any, **kw: Any) -> Fetcher:
        made.append(Fetcher(*args, **kw))
        return made[-1]

    yield make
    for fetcher in made:
        fetcher.close()


def get(url: str, **headers: str) -> dict:
    return {"id": 1, "url": url, "method": "GET", "headers": list(headers.items()), "body": None}


def resolver_to(address: str):
    return lambda host, port: [address]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.7", "172.16.5.5",
                                     "169.254.169.254", "0.0.0.0", "fe80::1"])
def test_special_addresses_are_refused_by_default(fetchers: Callable[..., Fetcher], address: str):
    fetcher = fetchers(resolver=resolver_to(address))
    with pytest.raises(EgressDeniedError, match="address"):
        fetcher.perform(get("http://innocent.example/"))


def test_a_name_that_resolves_to_loopback_is_refused_even_if_it_looks_public(
        fetchers: Callable[..., Fetcher]):
    fetcher = fetchers(resolver=lambda host, port: ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(EgressDeniedError, match="loopback"):
        fetcher.perform(get("http://rebinding.example/"))


def test_only_http_and_https(fetchers: Callable[..., Fetcher], http_server: Recorder):
    fetcher = fetchers(EgressPolicy(allow_loopback=True))
    for url in ("file:///etc/passwd", "ftp://example.com/", "gopher://x/"):
        with pytest.raises(EgressDeniedError, match="http and https"):
            fetcher.perform(get(url))


def test_allow_list_and_deny_list(fetchers: Callable[..., Fetcher]):
    fetcher = fetchers(EgressPolicy(allowed_hosts=frozenset({"api.example.com"})),
                      resolver=resolver_to("93.184.216.34"))
    with pytest.raises(EgressDeniedError, match="allow-list"):
        fetcher.perform(get("https://other.example.com/"))
    denied = fetchers(EgressPolicy(denied_hosts=frozenset({"metadata.internal"})),
                     resolver=resolver_to("93.184.216.34"))
    with pytest.raises(EgressDeniedError, match="not allowed"):
        denied.perform(get("http://metadata.internal/"))


def test_the_connection_goes_to_the_checked_address_with_the_original_host(
        fetchers: Callable[..., Fetcher], http_server: Recorder):
    """DNS rebinding cannot slip past: we connect to the address we checked."""
    port = http_server.url.rsplit(":", 1)[1]
    fetcher = fetchers(EgressPolicy(allow_loopback=True), resolver=resolver_to("127.0.0.1"))
    response = fetcher.perform(get(f"http://service.example:{port}/hello", Accept="text/plain"))
    assert response["status"] == 200
    assert json.loads(base64.b64decode(response["body"])) == {"n": 41}
    seen = http_server.requests[0]
    assert seen["path"] == "/hello"
    assert seen["headers"]["host"] == f"service.example:{port}"
    assert seen["headers"]["Accept"] == "text/plain"


def test_redirects_are_checked_hop_by_hop(fetchers: Callable[..., Fetcher], http_server: Recorder):
    http_server.status = 302
    http_server.headers = {"location": "http://169.254.169.254/latest/meta-data/"}
    fetcher = fetchers(EgressPolicy(allow_loopback=True))
    with pytest.raises(EgressDeniedError, match=r"169\.254\.169\.254"):
        fetcher.perform(get(http_server.url + "/go"))


def test_oversized_responses_are_refused(fetchers: Callable[..., Fetcher], http_server: Recorder):
    http_server.body = b"x" * 2048
    fetcher = fetchers(EgressPolicy(allow_loopback=True, max_response_bytes=1024))
    with pytest.raises(EgressDeniedError, match="size limit"):
        fetcher.perform(get(http_server.url + "/big"))


def test_a_machine_sees_a_refused_fetch_as_a_network_error(runtime: Runtime,
                                                           request: pytest.FixtureRequest):
    source = bundle("""{
      id: "ssrf", predictableActionArguments: true, initial: "idle", context: { error: "" },
      states: {
        idle: { on: { GO: "loading" } },
        loading: { invoke: {
          src: () => fetch("http://169.254.169.254/latest/meta-data/"),
          onDone: "idle",
          onError: { target: "idle",
                     actions: assign({ error: (c, e) => e.data.name + ": " + e.data.message }) },
        } },
      },
    }""")
    strict = Runtime(runtime.limits)          # the default policy: no special addresses
    request.addfinalizer(strict.close)
    version = load(strict, source)
    first = strict.create(version, instance_name="i", context=None, auth_context={},
                          on_commit=lambda m: None)
    res = strict.send(version, instance_name="i", state_json=first.final.state_json, event="GO",
                      auth_context={}, on_commit=lambda m: None)
    assert res.final.context["error"].startswith("TypeError:")
    assert "169.254.169.254" in res.final.context["error"]
