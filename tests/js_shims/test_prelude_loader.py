"""runtime/sandbox/prelude.py: the parts of js_shims/prelude/ become one script, in name order,
inside one strict function scope that shares their declarations and hides them from user code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.sandbox import hostcalls
from runtime.sandbox.prelude import prelude_source
from runtime.sandbox.vm import VM, Engine

JS_DIR = Path(__file__).parents[2] / "js_shims"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(host_call=hostcalls.handle)


def js(vm: VM, expr: str) -> Any:
    return json.loads(vm.eval(f'JSON.stringify({expr}) ?? "null"'))


def write_parts(tmp_path: Path, parts: dict[str, str]) -> Path:
    (tmp_path / "prelude").mkdir()
    for name, text in parts.items():
        (tmp_path / "prelude" / name).write_text(text)
    return tmp_path


def test_parts_share_one_private_scope_in_name_order(engine: Engine, tmp_path: Path) -> None:
    # Written out of order: were "10-b.js" evaluated first, `secret` would still be in its
    # temporal dead zone and the script would throw a ReferenceError.
    js_dir = write_parts(tmp_path, {
        "10-b.js": "order.push('b');\nglobalThis.seen = [typeof helper, helper(), order];\n",
        "00-a.js": "const secret = 41;\nfunction helper() { return secret + 1; }\n"
                   "const order = ['a'];\n",
        "notes.txt": "not a part",
    })
    vm = engine.new_vm()
    vm.eval(prelude_source(js_dir), "prelude.js")
    assert js(vm, "seen") == ["function", 42, ["a", "b"]]
    assert js(vm, "[typeof helper, typeof secret, typeof order]") == ["undefined"] * 3


def test_parts_run_in_strict_mode(engine: Engine, tmp_path: Path) -> None:
    js_dir = write_parts(tmp_path, {
        "00-a.js": "try { undeclared = 1; globalThis.mode = 'sloppy' }"
                   " catch (e) { globalThis.mode = e.name }\n",
    })
    vm = engine.new_vm()
    vm.eval(prelude_source(js_dir), "prelude.js")
    assert js(vm, "mode") == "ReferenceError"


def test_a_part_ending_in_a_line_comment_does_not_swallow_the_next(
        engine: Engine, tmp_path: Path) -> None:
    js_dir = write_parts(tmp_path, {
        "00-a.js": "globalThis.parts = ['a']; // no newline at the end",
        "10-b.js": "parts.push('b');",
    })
    vm = engine.new_vm()
    vm.eval(prelude_source(js_dir), "prelude.js")
    assert js(vm, "parts") == ["a", "b"]


def test_the_real_prelude_keeps_its_internals_private(engine: Engine) -> None:
    vm = engine.new_vm()
    vm.eval(prelude_source(JS_DIR), "prelude.js")
    # viewBytes is declared in 00-core.js and used by TextDecoder in 30-encoding.js.
    assert js(vm, "new TextDecoder().decode(new Uint16Array([0x6968]))") == "hi"
    private = ["viewBytes", "hostCall", "rawHostCall", "define", "INTERNAL", "record", "timers",
               "utf8Encode", "parseURL", "fetches", "bs"]
    assert js(vm, f"{json.dumps(private)}.filter((name) => typeof globalThis[name] !== "
                  "'undefined' || name in globalThis)") == []
    assert js(vm, "typeof viewBytes") == "undefined"


def test_a_missing_prelude_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no prelude parts"):
        prelude_source(tmp_path)
