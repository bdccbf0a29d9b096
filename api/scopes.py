"""Key scopes, as State Backed names them, and the sets behind `use`."""

from __future__ import annotations

from typing import Literal, get_args

Scope = Literal[
    "events.write",
    "events.read",
    "state.read",
    "instances.read",
    "instances.write",
    "instances.admin",
    "machines.read",
    "machines.write",
    "machines.admin",
    "machine-versions.read",
    "machine-versions.write",
    "analytics.read",
    "org.read",
    "org.write",
    "org.keys.write",
    "org-members.write",
    "logs.read",
    "tokens.admin",
    "indexes.read",
]
ALL_SCOPES: tuple[Scope, ...] = get_args(Scope)

KeyUse = Literal["production", "ci", "admin"]

USE_SCOPES: dict[KeyUse, tuple[Scope, ...]] = {
    "production": ("events.write", "state.read", "instances.write", "indexes.read"),
    "ci": ("machines.read", "machines.write", "machine-versions.read", "machine-versions.write"),
    "admin": ALL_SCOPES,
}

# Sending an event: the spec names `instances.write`, State Backed's docs `events.write`.
SEND_EVENT_SCOPES: tuple[Scope, ...] = ("instances.write", "events.write")

# Holding this scope is what makes a caller an admin: it may impersonate end users with
# `x-statebacked-act` (the docs allow it to anyone who could create an API key).
ADMIN_SCOPE: Scope = "org.keys.write"


def scopes_for(use: KeyUse | None, scopes: list[Scope] | None) -> list[Scope]:
    """Explicit `scopes` win over `use` (smply always sends `use`); neither means production."""
    if scopes:
        return sorted(set(scopes))
    return sorted(USE_SCOPES[use or "production"])
