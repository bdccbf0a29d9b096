"""A machine version's definition: the structure of its state chart, as the dashboard draws it.

It is read from the machine itself (`machine.definition`, XState 4) inside the sandbox, by the
harness's `definition` op, once when a version is finalized, and stored with the version. Only
names and structure leave the VM (no functions, context or meta), so it is JSON by
construction. Format 1:

    {"format": 1, "root": Node}                 or   {"format": 1, "unavailable": "why"}

    Node = {"id": "door.closed", "key": "closed",
            "type": "atomic" | "compound" | "parallel" | "final" | "history",
            "initial"?: "key of the initial child", "history"?: "shallow" | "deep",
            "description"?: str, "tags": [str], "entry": [action], "exit": [action],
            "invoke": [{"id": str, "src": str}],
            "on": [Transition],                 # in xstate's order: events, after, always...
            "states": [Node]}                   # children in document order

    Transition = {"event": "OPEN" | "" (always) | "xstate.after(1000)#door.closed" | ...,
                  "kind": "event" | "after" | "always" | "done" | "error" | "wildcard",
                  "targets": [node id], "internal": bool,
                  "guard"?: str ("" for an unnamed inline guard),
                  "delay"?: int ms | str (a named delay), "actions": [action]}

An action is its name ("inline" for an anonymous function). A definition too large to store
is replaced by an `unavailable` one saying so, never truncated silently.
"""

from __future__ import annotations

import json
from typing import Any

FORMAT = 1
MAX_BYTES = 1_000_000


def unavailable(reason: str) -> dict[str, Any]:
    return {"format": FORMAT, "unavailable": reason}


def checked(definition: dict[str, Any]) -> dict[str, Any]:
    """The harness's answer, as stored: the right format, within the size limit."""
    if definition.get("format") != FORMAT:
        return unavailable(f"unknown definition format {definition.get('format')!r}")
    if "unavailable" in definition:
        return unavailable(str(definition["unavailable"]))
    if not isinstance(definition.get("root"), dict):
        return unavailable("the definition has no root state")
    size = len(json.dumps(definition, separators=(",", ":")).encode())
    if size > MAX_BYTES:
        return unavailable(
            f"the machine's definition is {size} bytes as JSON; the chart's limit is {MAX_BYTES}"
        )
    return definition
