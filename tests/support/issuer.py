"""A local identity provider for token-exchange tests: it signs JWTs with its own keys and
serves their JWKS over HTTPS, on 127.0.0.1, with a certificate from a CA made for the test.

The server under test trusts that CA through `BACKSTATE_JWKS_CA_FILE` (`Settings.jwks_ca_file`),
the same setting an issuer behind a private CA needs: no plain-http exception exists.

    GET  /jwks.json   the JWKS (or, per `mode`, a failure: malformed, not a JWKS, HTTP 500)
    GET  /token       a token signed with the current key, for the `claims` set on the issuer
    POST /rotate      a new key replaces the current one in the JWKS (key rotation)
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

Mode = str  # "ok" | "malformed" | "not-jwks" | "error"


@dataclass
class Tls:
    """A CA (its PEM at `ca_file`) and a server certificate it signed for 127.0.0.1."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def make(cls, directory: Path) -> Tls:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backstate test CA")])
        ca = (
            _builder(ca_name, ca_name, ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        alt = x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        )
        cert = (
            _builder(name, ca_name, key.public_key())
            .add_extension(alt, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        tls = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        tls.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return tls


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


def new_key(kid: str, alg: str = "RS256") -> SigningKey:
    if alg.startswith(("RS", "PS")):
        return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
    if alg in curves:
        return SigningKey(kid, alg, ec.generate_private_key(curves[alg]))
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return SigningKey(kid, alg, ed25519.Ed25519PrivateKey.generate())


@dataclass
class Issuer:
    """The identity provider's state; `url` is set once it serves."""

    audience: str = "backstate-tests"
    keys: list[SigningKey] = field(default_factory=lambda: [new_key("key-1")])
    claims: dict[str, Any] = field(default_factory=lambda: {"sub": "alice"})
    mode: Mode = "ok"
    url: str = ""
    fetches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks.json"

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self, *, keep_old: bool = False) -> SigningKey:
        with self._lock:
            key = new_key(f"key-{len(self.keys) + 1}", self.current.alg)
            self.keys = [*self.keys, key] if keep_old else [key]
            return key

    def sign(
        self,
        claims: dict[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
        expires_in: int | None = 3600,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """A token from this issuer: iss, aud, iat, exp (unless `expires_in` is None), then
        `claims` (which may override them)."""
        now = int(time.time())
        key = key or self.current
        body: dict[str, Any] = {"iss": self.url, "aud": self.audience, "iat": now}
        if expires_in is not None:
            body["exp"] = now + expires_in
        body.update(self.claims if claims is None else claims)
        header = {"kid": key.kid, **(headers or {})}
        return jwt.encode(body, key.private, algorithm=key.alg, headers=header)

    def document(self) -> bytes:
        with self._lock:
            self.fetches += 1
            keys = list(self.keys)
        if self.mode == "malformed":
            return b"<html>not json"
        if self.mode == "not-jwks":
            return b'{"issuer": "no keys here"}'
        return json.dumps({"keys": [k.jwk() for k in keys]}).encode()


@contextmanager
def serve_issuer(issuer: Issuer, tls: Tls) -> Iterator[Issuer]:
    """Serve `issuer` over HTTPS on 127.0.0.1 until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/jwks.json":
                body = issuer.document()
                status = 500 if issuer.mode == "error" else 200
                self._answer(status, body, "application/json")
            elif self.path == "/token":
                self._answer(200, issuer.sign().encode(), "text/plain")
            else:
                self._answer(404, b"{}", "application/json")

        def do_POST(self) -> None:
            if self.path == "/rotate":
                key = issuer.rotate()
                self._answer(200, json.dumps({"kid": key.kid}).encode(), "application/json")
            else:
                self._answer(404, b"{}", "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    issuer.url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
