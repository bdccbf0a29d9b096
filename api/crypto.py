"""Everything derived from the server secret: sealing key secrets and signing tokens/ids.

Purpose-specific keys come from HKDF-SHA256 over the server secret, so one secret never
serves two uses directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hmac_sha256_b64url(key: str, data: str) -> str:
    """What the client sends to confirm deletions: base64url(HMAC-SHA256(key, data))."""
    return b64url(hmac.new(key.encode(), data.encode(), hashlib.sha256).digest())


class ServerKeys:
    def __init__(self, secret: str):
        self._seal = AESGCM(_derive(secret, b"backstate key secrets v1"))
        self._sign = _derive(secret, b"backstate signatures v1")

    def seal(self, plaintext: str, *, bound_to: bytes) -> bytes:
        """AES-GCM ciphertext of `plaintext`, only openable with the same `bound_to`."""
        nonce = os.urandom(12)
        return nonce + self._seal.encrypt(nonce, plaintext.encode(), bound_to)

    def open(self, sealed: bytes, *, bound_to: bytes) -> str | None:
        """The plaintext, or None if the ciphertext was tampered with or the secret changed."""
        try:
            return self._seal.decrypt(sealed[:12], sealed[12:], bound_to).decode()
        except (InvalidTag, ValueError):
            return None

    def sign(self, purpose: str, data: str) -> str:
        mac = hmac.new(self._sign, f"{purpose}\n{data}".encode(), hashlib.sha256).digest()
        return b64url(mac[:16])

    def verify(self, purpose: str, data: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(purpose, data), signature)

    def seal_claims(self, purpose: str, claims: dict[str, Any]) -> str:
        """A compact signed token `payload.signature` (URL-safe)."""
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{self.sign(purpose, payload)}"

    def open_claims(self, purpose: str, token: str) -> dict[str, Any] | None:
        payload, _, signature = token.partition(".")
        if not signature or not self.verify(purpose, payload, signature):
            return None
        try:
            claims = json.loads(unb64url(payload))
        except ValueError:
            return None
        return claims if isinstance(claims, dict) else None


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())
