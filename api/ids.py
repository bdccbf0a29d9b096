"""Pretty ids: `prefix_` + base64url (no padding) of the 16 UUID bytes, as State Backed shows.

ver_FsrMf_baSJG53SBNSUszzw  <->  16cacc7f-f6da-4891-b9dd-204d494b33cf

`mig_` (migrations between versions) is ours: State Backed's clients only print those ids.
"""

from __future__ import annotations

import binascii
import uuid
from typing import Literal

from api.crypto import b64url, unb64url

Prefix = Literal["org", "ver", "sbk", "usr", "mig"]


def encode(prefix: Prefix, value: uuid.UUID) -> str:
    return f"{prefix}_" + b64url(value.bytes)


def decode(prefix: Prefix, pretty: str) -> uuid.UUID | None:
    """The UUID behind `pretty`, or None if it is not a well-formed id with this prefix."""
    head, sep, body = pretty.partition("_")
    if not sep or head != prefix or len(body) != 22:
        return None
    try:
        raw = unb64url(body)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 or encode(prefix, uuid.UUID(bytes=raw)) != pretty:
        return None
    return uuid.UUID(bytes=raw)
