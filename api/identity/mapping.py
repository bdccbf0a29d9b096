"""The claim mapping language of identity and token providers (State Backed's, after AWS Step
Functions' parameters):

    {"sub.$": "$.sub", "service": "my-app", "special": {"role.$": "$.role.id"}}

A key ending in `.$` names an output claim (without the `.$`) whose value is the JSONPath on
its right, evaluated against the input claims; any other key is a literal, and a nested
object is mapped the same way. A path that matches nothing adds nothing; a definite path
(fields and single indexes only: `$.a.b`, `$.a[0]`) yields its one value, any other
(`$.roles[*]`, `$..id`) the list of what it matched. A nested object that ends up empty is
left out, so "no claims" means exactly that.

Paths are parsed by jsonpath-ng (pinned: `_definite` reads its parse tree).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jsonpath_ng import JSONPath, parse
from jsonpath_ng.jsonpath import Child, Fields, Index, Root

from runtime.errors import InvalidRequestError

PATH_SUFFIX = ".$"
MAX_DEPTH = 8


@dataclass(frozen=True)
class _Path:
    expression: JSONPath
    definite: bool

    def value(self, claims: dict[str, Any]) -> tuple[bool, Any]:
        found = [match.value for match in self.expression.find(claims)]
        if self.definite:
            return (True, found[0]) if found else (False, None)
        return (True, found) if found else (False, None)


@dataclass(frozen=True)
class _Literal:
    value: Any


@dataclass(frozen=True)
class _Nested:
    entries: tuple[tuple[str, _Rule], ...]


_Rule = _Path | _Literal | _Nested


@dataclass(frozen=True)
class Mapping:
    """A validated mapping; `apply` it to a claims object."""

    source: dict[str, Any]
    _root: _Nested

    def apply(self, claims: dict[str, Any]) -> dict[str, Any]:
        return _apply(self._root, claims)


def compile_mapping(source: Any, *, parameter: str = "mapping") -> Mapping:
    """A `Mapping`, or `InvalidRequestError` naming the offending entry."""
    return Mapping(source, _compile(source, parameter, 0))  # validated: a dict


def _compile(source: Any, where: str, depth: int) -> _Nested:
    if not isinstance(source, dict):
        raise InvalidRequestError(f"{where} must be a JSON object", parameter=where)
    if depth > MAX_DEPTH:
        raise InvalidRequestError(f"{where} nests deeper than {MAX_DEPTH}", parameter=where)
    entries: list[tuple[str, _Rule]] = []
    for key, value in source.items():
        here = f"{where}.{key}"
        if key.endswith(PATH_SUFFIX):
            name = key[: -len(PATH_SUFFIX)]
            if not name:
                raise InvalidRequestError(f"{here}: a claim name comes before .$", parameter=here)
            entries.append((name, compile_path(value, here)))
        elif isinstance(value, dict):
            entries.append((key, _compile(value, here, depth + 1)))
        else:
            entries.append((key, _Literal(value)))
    return _Nested(tuple(entries))


def compile_path(path: Any, where: str) -> _Path:
    if not isinstance(path, str) or not path.startswith("$"):
        raise InvalidRequestError(
            f"{where} must be a JSONPath string starting with $ (e.g. $.sub)", parameter=where
        )
    try:
        return _parsed(path)
    except Exception as exc:  # jsonpath-ng raises plain Exceptions and its own lexer errors
        message = f"{where} is not a valid JSONPath: {exc}"
        raise InvalidRequestError(message, parameter=where) from exc


@functools.lru_cache(maxsize=1024)
def _parsed(path: str) -> _Path:
    expression = parse(path)
    return _Path(expression, _definite(expression))


def _definite(node: JSONPath) -> bool:
    """Whether a path names at most one value (then its value is that value, not a list)."""
    if isinstance(node, Root):
        return True
    if isinstance(node, Child):
        return _definite(node.left) and _definite(node.right)
    if isinstance(node, Fields):
        return len(node.fields) == 1 and node.fields[0] != "*"
    if isinstance(node, Index):
        return len(node.indices) == 1
    return False


def _apply(nested: _Nested, claims: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rule in nested.entries:
        if isinstance(rule, _Path):
            found, value = rule.value(claims)
            if found:
                out[name] = value
        elif isinstance(rule, _Literal):
            out[name] = rule.value
        else:
            inner = _apply(rule, claims)
            if inner:
                out[name] = inner
    return out
