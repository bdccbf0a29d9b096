"""The Python side of the sandbox's `fetch`: performs a machine's HTTP requests under an egress
policy. By default a machine may not reach private, loopback, link-local or otherwise special
addresses (no SSRF into the host's network); tests enable loopback explicitly.

The host name is resolved once, every address is checked, and the connection goes to a checked
address (Host header and TLS SNI keep the name), so DNS rebinding cannot slip past the policy.
Redirects are followed by hand, each hop checked again.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx

from runtime.errors import EgressDeniedError

Resolver = Callable[[str, int], list[str]]
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class EgressPolicy:
    allow_loopback: bool = False
    allow_private: bool = False
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)   # empty: any public host
    denied_hosts: frozenset[str] = field(default_factory=frozenset)
    timeout_s: float = 30.0
    max_response_bytes: int = 5 << 20
    max_request_bytes: int = 5 << 20

    def check_host(self, host: str) -> None:
        name = host.lower().rstrip(".")
        if name in self.denied_hosts:
            raise EgressDeniedError(f"fetch to {host} is not allowed by the server's egress policy")
        if self.allowed_hosts and name not in self.allowed_hosts:
            raise EgressDeniedError(f"fetch to {host} is not in the server's egress allow-list")

    def check_address(self, host: str, address: str) -> None:
        ip = ipaddress.ip_address(address)
        if ip.is_loopback:
            if not self.allow_loopback:
                raise EgressDeniedError(f"fetch to {host} ({address}) is a loopback address")
            return
        special = (ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
                   or ip.is_unspecified)
        if special and not self.allow_private:
            raise EgressDeniedError(f"fetch to {host} ({address}) is a private or special address")


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Fetcher:
    """Runs fetches on a thread pool; `submit` returns a future of the bridge's response dict
    ({status, statusText, url, headers: [[k, v]], body: base64})."""

    def __init__(self, policy: EgressPolicy | None = None, *, resolver: Resolver = system_resolver,
                 workers: int = 32, transport: httpx.BaseTransport | None = None):
        self.policy = policy or EgressPolicy()
        self._resolve = resolver
        self._pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
        self._client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False,
                                    timeout=self.policy.timeout_s)

    def close(self) -> None:
        """Close pooled connections and stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, request: dict[str, Any]) -> cf.Future[dict[str, Any]]:
        return self._pool.submit(self.perform, request)

    def perform(self, request: dict[str, Any]) -> dict[str, Any]:
        method = str(request.get("method") or "GET").upper()
        url = str(request["url"])
        headers = [(str(k), str(v)) for k, v in request.get("headers") or []]
        body = base64.b64decode(request["body"]) if request.get("body") else None
        if body is not None and len(body) > self.policy.max_request_bytes:
            raise EgressDeniedError("fetch request body is over the size limit")
        for _ in range(MAX_REDIRECTS + 1):
            response = self._one(method, url, headers, body)
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                return self._to_bridge(url, response)
            url = urljoin(url, location)
            if response.status_code == 303 or (response.status_code in (301, 302)
                                               and method == "POST"):
                method, body = "GET", None
        raise EgressDeniedError(f"fetch followed more than {MAX_REDIRECTS} redirects")

    def _one(self, method: str, url: str, headers: list[tuple[str, str]],
             body: bytes | None) -> httpx.Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EgressDeniedError(f"fetch supports http and https URLs only, not {url!r}")
        host = parts.hostname
        self.policy.check_host(host)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = self._resolve(host, port)
        if not addresses:
            raise EgressDeniedError(f"fetch could not resolve {host}")
        for address in addresses:
            self.policy.check_address(host, address)
        pinned = _with_host(parts, addresses[0], port)
        send_headers = [(k, v) for k, v in headers if k.lower() != "host"]
        send_headers.append(("host", parts.netloc.rsplit("@", 1)[-1]))
        req = self._client.build_request(method, pinned, headers=send_headers, content=body,
                                         extensions={"sni_hostname": host})
        response = self._client.send(req, stream=True)
        try:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > self.policy.max_response_bytes:
                    raise EgressDeniedError("fetch response is over the size limit")
            response._content = bytes(data)
        finally:
            response.close()
        return response

    @staticmethod
    def _to_bridge(url: str, response: httpx.Response) -> dict[str, Any]:
        return {
            "status": response.status_code,
            "statusText": response.reason_phrase,
            "url": url,
            "headers": [[k, v] for k, v in response.headers.multi_items()
                        if k.lower() not in ("content-encoding", "transfer-encoding")],
            "body": base64.b64encode(response.content).decode(),
        }


def _with_host(parts: SplitResult, address: str, port: int) -> str:
    ip = ipaddress.ip_address(address)
    host = f"[{address}]" if ip.version == 6 else address
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))
