"""State values as XState 4 reads them: `to_strings` and `matches_state` (XState's own
algorithms, as the official client copies them) and `enhance_state`, which adds `states` to
every instance state the client returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from backstate_client._types import State, StateValue


def to_strings(value: StateValue | None, delimiter: str = ".") -> list[str]:
    """Every state path of a state value: `{"a": {"b": "c"}}` -> `["a", "a.b", "a.b.c"]`."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    keys = list(value)
    nested = [f"{key}{delimiter}{path}" for key in keys for path in to_strings(value[key])]
    return keys + nested


def matches_state(parent: StateValue | Sequence[str] | None, child: StateValue | None) -> bool:
    """Whether `child` (a state value) is in `parent`: for `{"a": {"b": "c"}}`, each of "a",
    "a.b", "a.b.c", ["a", "b"], {"a": "b"} and {"a": {"b": "c"}} matches."""
    if parent is None:
        return child is None
    if child is None:
        return True
    parent_value = _to_state_value(parent)
    child_value = _to_state_value(child)
    if isinstance(child_value, str):
        return isinstance(parent_value, str) and parent_value == child_value
    if isinstance(parent_value, str):
        return parent_value in child_value
    return all(
        key in child_value and matches_state(parent_value[key], child_value[key])
        for key in parent_value
    )


def enhance_state(raw: Mapping[str, Any]) -> State:
    """An instance state from the wire, with `states` added (as the official client's
    `enhanceState`)."""
    state = cast(State, dict(raw))
    state["states"] = to_strings(state.get("state"))
    return state


def _to_state_value(value: StateValue | Sequence[str]) -> StateValue:
    if isinstance(value, str):
        return _path_to_state_value(value.split("."))
    if isinstance(value, Mapping):
        return cast(StateValue, value)
    return _path_to_state_value(list(value))


def _path_to_state_value(path: list[str]) -> StateValue:
    if not path:
        return {}
    if len(path) == 1:
        return path[0]
    value: StateValue = path[-1]
    for key in reversed(path[:-1]):
        value = {key: value}
    return value
