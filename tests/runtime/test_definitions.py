"""A version's definition, read from its machine in the sandbox (harness `definition` op)."""

from __future__ import annotations

import pytest

from runtime import definitions
from runtime.engine import Runtime
from runtime.errors import BundleError
from tests.runtime.conftest import bundle


def test_the_definition_is_the_machines_own_structure(runtime: Runtime) -> None:
    source = bundle("""{
      id: "m", initial: "a", predictableActionArguments: true,
      states: {
        a: { entry: ["hello", () => {}], on: { GO: { target: "b", actions: assign({ n: 1 }) } } },
        b: { invoke: { src: () => Promise.resolve(1), onDone: "a" }, after: { 250: "a" } },
      },
    }""")
    root = runtime.describe_bundle(source)["root"]
    a, b = root["states"]
    assert a["entry"] == ["hello", "inline"]   # an anonymous action is not named by its code
    assert a["on"][0]["actions"] == ["xstate.assign"]
    assert b["invoke"][0]["id"] == b["invoke"][0]["src"]   # xstate names an inline service
    assert [t["kind"] for t in b["on"]] == ["done", "after"]
    assert b["on"][1]["delay"] == 250


def test_a_definition_that_cannot_be_read_says_why_and_the_bundle_still_loads(
    runtime: Runtime,
) -> None:
    # A default export that looks like a machine once, and throws when read again.
    source = """
    let reads = 0;
    export default { __xstatenode: true, get definition() {
      if (reads++) throw new Error("no second look"); return {}; } };
    export const allowRead = () => true;
    export const allowWrite = () => true;
    """
    described = runtime.describe_bundle(source)
    assert described == {
        "format": 1,
        "unavailable": "reading the machine's definition threw Error: no second look",
    }


def test_bundles_that_do_not_load_are_refused_as_at_finalize(runtime: Runtime) -> None:
    with pytest.raises(BundleError, match="must export a function named allowWrite"):
        runtime.describe_bundle(bundle('{ id: "m", initial: "a", states: { a: {} } }',
                                       allow_write="42"))


def test_definitions_too_large_to_store_are_replaced_by_the_reason() -> None:
    big = {"format": 1, "root": {"id": "x" * (definitions.MAX_BYTES + 1)}}
    checked = definitions.checked(big)
    assert checked["format"] == 1 and "chart's limit is 1000000" in checked["unavailable"]
    assert definitions.checked({"format": 2})["unavailable"] == "unknown definition format 2"
    assert definitions.checked({"format": 1})["unavailable"] == "the definition has no root state"
    small = {"format": 1, "root": {"id": "m"}}
    assert definitions.checked(small) is small
