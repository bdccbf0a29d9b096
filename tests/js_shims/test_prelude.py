"""The web-standard globals of the prelude (js_shims/prelude/), in the real sandbox, as machine
code meets them; and runtime/sandbox/hostcalls.py, the host side of their synchronous bridge.

Every VM test runs twice: on the engine as built, and on a "bare" engine whose optional
built-ins (queueMicrotask, atob, DOMException, native base64...) were deleted before the
prelude ran, so that the prelude's fallbacks meet the same expectations as the natives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import MachineError
from runtime.sandbox import hostcalls
from runtime.sandbox.prelude import prelude_source
from runtime.sandbox.vm import VM, Engine, Snapshot

PRELUDE = prelude_source(Path(__file__).parents[2] / "js_shims")
TRUNCATED = "[backstate] log output truncated"
# Built-ins the prelude uses when the engine has them and polyfills (or works around) when not.
OPTIONAL_BUILTINS = ["globalThis.queueMicrotask", "globalThis.atob", "globalThis.btoa",
                     "globalThis.DOMException", "globalThis.structuredClone",
                     "globalThis.performance", "Uint8Array.prototype.toBase64",
                     "Uint8Array.fromBase64"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(host_call=hostcalls.handle)


@pytest.fixture(scope="module", params=["engine", "bare"])
def snapshot(request: pytest.FixtureRequest, engine: Engine) -> Snapshot:
    vm = engine.new_vm()
    if request.param == "bare":
        vm.eval(";".join(f"delete {name}" for name in OPTIONAL_BUILTINS))
    vm.eval(PRELUDE, "prelude.js")
    return vm.snapshot()


@pytest.fixture
def vm(engine: Engine, snapshot: Snapshot) -> VM:
    return engine.clone(snapshot)


def js(vm: VM, expr: str) -> Any:
    """The JSON value of a JS expression."""
    return json.loads(vm.eval(f'JSON.stringify({expr}) ?? "null"'))


def js_async(vm: VM, body: str) -> Any:
    """Run an async function body to completion; its value, or {"error": {name, message}}."""
    vm.eval("globalThis.outcome = undefined; (async () => {" + body + "})().then("
            "(v) => { outcome = {value: v} }, "
            "(e) => { outcome = {error: {name: e?.name, message: String(e?.message ?? e)}} })")
    vm.run_jobs()
    outcome = js(vm, "outcome")
    assert outcome is not None, "the async body did not settle"
    return outcome.get("value", outcome)


def thrown(vm: VM, statement: str) -> Any:
    """The name of what a JS statement throws, or null."""
    return js(vm, f"(() => {{ try {{ {statement} }} catch (e) {{ return e.name }} }})()")


def logs(vm: VM) -> list[tuple[str, str]]:
    return [(line["stream"], line["text"]) for line in js(vm, "__bs.takeLogs()")]


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


# ---------------------------------------------------------------------------- the bridge


def test_host_call_is_not_reachable_from_user_code(vm: VM) -> None:
    assert js(vm, "typeof __host_call") == "undefined"
    assert js(vm, "'__host_call' in globalThis") is False
    assert js(vm, "Object.getOwnPropertyNames(globalThis).filter((n) => /host/i.test(n))") == []


def test_user_code_cannot_replace_the_driver_protocol(vm: VM) -> None:
    vm.eval("try { __bs.takeLogs = () => [] } catch {} try { globalThis.__bs = {} } catch {}")
    vm.eval("console.log('still recorded')")
    assert logs(vm) == [("stdout", "still recorded")]


def test_host_errors_reject_with_the_hosts_message(engine: Engine) -> None:
    # Native base64 only: the bare engine's JS fallback would take a minute over 10 MB.
    vm = engine.new_vm()
    vm.eval(PRELUDE, "prelude.js")
    outcome = js_async(vm, "await crypto.subtle.digest('SHA-256', new Uint8Array(10 * 2**20 + 3))")
    assert outcome["error"]["name"] == "OperationError"
    assert "larger than" in outcome["error"]["message"]


# ---------------------------------------------------------------------------- Math.random


def test_math_random_follows_the_drivers_seed(engine: Engine, snapshot: Snapshot) -> None:
    draws = []
    for seed in ["11" * 32, "11" * 32, "22" * 32]:
        vm = engine.clone(snapshot)
        vm.eval(f"__bs.reseed('{seed}')")
        draws.append(js(vm, "Array.from({length: 5}, () => Math.random())"))
    assert draws[0] == draws[1]
    assert draws[1] != draws[2]
    assert all(0 <= x < 1 for x in draws[2])


def test_clones_of_one_snapshot_draw_different_numbers_without_a_seed(
        engine: Engine, snapshot: Snapshot) -> None:
    first, second = engine.clone(snapshot), engine.clone(snapshot)
    assert js(first, "Math.random()") != js(second, "Math.random()")


def test_math_random_is_uniform_enough(vm: VM) -> None:
    vm.eval(f"__bs.reseed('{'00' * 32}')")   # the all-zero state must not get stuck
    values = js(vm, "Array.from({length: 4000}, () => Math.random())")
    assert 0.45 < sum(values) / len(values) < 0.55
    assert len(set(values)) == len(values)


def test_reseed_rejects_a_malformed_seed(vm: VM) -> None:
    with pytest.raises(MachineError, match="64 hex digits"):
        vm.eval("__bs.reseed('abc')")


# ---------------------------------------------------------------------------- console


def test_console_methods_write_to_their_streams_with_the_driver_clock(vm: VM) -> None:
    vm.eval("__bs.now = 1234; console.log('l'); console.info('i'); console.debug('d');"
            "__bs.now = 1300; console.warn('w'); console.error('e')")
    lines = js(vm, "__bs.takeLogs()")
    assert [(x["ts"], x["stream"], x["text"]) for x in lines] == [
        (1234, "stdout", "l"), (1234, "stdout", "i"), (1234, "stdout", "d"),
        (1300, "stderr", "w"), (1300, "stderr", "e")]
    assert logs(vm) == []


@pytest.mark.parametrize(("args", "text"), [
    ("'a %s b %d %i %f %%', 'x', '42', 3.9, '1.5'", "a x b 42 3 1.5 %"),
    ("'%o and %j', [1], {a: 1}, 'extra'", "[ 1 ] and {\"a\":1} extra"),
    ("'x', 1, null, undefined, true, 10n, Symbol('s'), -0",
     "x 1 null undefined true 10n Symbol(s) -0"),
    ("{a: [1, {b: {c: {d: 1}}}], s: 'q', 'my-key': 2}",
     "{ a: [ 1, { b: [Object] } ], s: 'q', 'my-key': 2 }"),
    ("new Map([['k', 1]]), new Set([2]), [1, 'two'], new Uint8Array(2)",
     "Map(1) { 'k' => 1 } Set(1) { 2 } [ 1, 'two' ] Uint8Array(2) [ 0, 0 ]"),
    ("new Date(0), /x/g, function named() {}, class K {}",
     "1970-01-01T00:00:00.000Z /x/g [Function: named] [class K]"),
    ("(() => { const o = {}; o.self = o; return o })()", "{ self: [Circular] }"),
    ("Object.create(null), new (class Point { constructor() { this.x = 1 } })()",
     "[Object: null prototype] {} Point { x: 1 }"),
    ("{get lazy() { throw new Error('not called') }}", "{ lazy: [Getter] }"),
    ("new URLSearchParams('a=1')", "URLSearchParams { 'a' => '1' }"),
])
def test_console_formats_arguments_like_node(vm: VM, args: str, text: str) -> None:
    vm.eval(f"console.log({args})")
    assert logs(vm) == [("stdout", text)]


def test_console_prints_errors_with_name_message_and_stack(vm: VM) -> None:
    vm.eval("function explode() { throw new TypeError('bad thing') }\n"
            "try { explode() } catch (e) { console.error('failed:', e) }")
    [(stream, text)] = logs(vm)
    assert stream == "stderr"
    assert text.startswith("failed: TypeError: bad thing\n")
    assert "explode" in text


def test_console_methods_work_detached(vm: VM) -> None:
    # xstate binds console.log when it loads; user code destructures.
    vm.eval("const bound = console.log.bind(console); const { warn } = console;"
            "bound('a'); warn('b')")
    assert logs(vm) == [("stdout", "a"), ("stderr", "b")]


def test_console_assert_trace_count_and_group(vm: VM) -> None:
    vm.eval("console.assert(true, 'hidden'); console.assert(1 > 2, 'math', 42);"
            "console.count(); console.count(); console.count('x');"
            "console.group('outer'); console.log('inside'); console.groupEnd(); console.log('out');"
            "function where() { console.trace('here') } where()")
    lines = logs(vm)
    assert lines[:6] == [("stderr", "Assertion failed: math 42"), ("stdout", "default: 1"),
                         ("stdout", "default: 2"), ("stdout", "x: 1"), ("stdout", "outer"),
                         ("stdout", "  inside")]
    assert lines[6] == ("stdout", "out")
    assert lines[7][0] == "stderr"
    assert lines[7][1].startswith("Trace: here\n")
    assert "where" in lines[7][1]


def test_console_table_draws_a_box(vm: VM) -> None:
    vm.eval("console.table([{a: 1, b: 'x'}, {a: 2}])")
    assert logs(vm) == [("stdout", "\n".join([
        "┌─────────┬───┬─────┐",
        "│ (index) │ a │ b   │",
        "├─────────┼───┼─────┤",
        "│ 0       │ 1 │ 'x' │",
        "│ 1       │ 2 │     │",
        "└─────────┴───┴─────┘"]))]


def test_console_keeps_at_most_1000_lines_and_says_so_once(vm: VM) -> None:
    vm.eval("for (let i = 0; i < 1005; i++) console.log(i)")
    lines = logs(vm)
    assert len(lines) == 1001
    assert lines[999] == ("stdout", "999")
    assert lines[1000] == ("stderr", TRUNCATED)
    vm.eval("console.log('later')")
    assert logs(vm) == []


def test_console_cuts_a_line_at_64_kib(vm: VM) -> None:
    vm.eval("console.log('é'.repeat(40000)); console.log('next')")   # 80,000 bytes of UTF-8
    lines = logs(vm)
    assert lines[0][1] == "é" * 32768
    assert lines[1:] == [("stderr", TRUNCATED), ("stdout", "next")]


def test_console_keeps_at_most_1_mib_in_all(vm: VM) -> None:
    vm.eval("for (let i = 0; i < 20; i++) console.log('x'.repeat(60000))")
    lines = logs(vm)
    assert lines[-1] == ("stderr", TRUNCATED)
    assert len(lines) == 17 + 1        # 17 * 60,000 bytes fit in 1 MiB, 18 do not
    assert sum(len(text.encode()) for _, text in lines[:-1]) <= 1 << 20
    vm.eval("console.log('small')")
    assert logs(vm) == []


def test_console_never_throws_into_user_code(vm: VM) -> None:
    vm.eval("const hostile = {valueOf() { throw new Error('no') }, get x() { throw 1 }};"
            "const trap = new Proxy({}, {ownKeys() { throw new Error('trap') }});"
            "console.log('%d', hostile); console.log(trap); console.table(trap); console.log('ok')")
    assert logs(vm)[-1] == ("stdout", "ok")


# ---------------------------------------------------------------------------- timers


def fire(vm: VM, now: int) -> int:
    return int(js(vm, f"(__bs.now = {now}, __bs.fireDueTimers())"))


def test_timers_fire_in_due_order_as_the_driver_clock_advances(vm: VM) -> None:
    vm.eval("__bs.now = 1000; globalThis.order = [];"
            "setTimeout(() => order.push('b'), 20);"
            "setTimeout((x, y) => order.push(x + y), 10, 'a', '!');"
            "setTimeout(() => order.push('c'), 20);")
    assert js(vm, "[__bs.nextTimerDue(), __bs.pendingTimers()]") == [1010, 3]
    assert fire(vm, 1009) == 0
    assert fire(vm, 1020) == 3
    assert js(vm, "order") == ["a!", "b", "c"]
    assert js(vm, "[__bs.nextTimerDue(), __bs.pendingTimers()]") == [None, 0]


def test_a_cleared_timer_never_fires(vm: VM) -> None:
    vm.eval("__bs.now = 0; globalThis.fired = [];"
            "const later = setTimeout(() => fired.push('later'), 10);"
            "setTimeout(() => { fired.push('first'); clearTimeout(later) }, 5);"
            "clearTimeout(setTimeout(() => fired.push('never'), 1));")
    assert fire(vm, 100) == 1
    assert js(vm, "fired") == ["first"]
    assert js(vm, "__bs.pendingTimers()") == 0


def test_intervals_repeat_until_cleared(vm: VM) -> None:
    vm.eval("__bs.now = 0; globalThis.ticks = 0; globalThis.id = setInterval(() => ticks++, 100)")
    assert [fire(vm, t) for t in (99, 100, 150, 200)] == [0, 1, 0, 1]
    assert js(vm, "__bs.nextTimerDue()") == 300
    vm.eval("clearInterval(id)")
    assert js(vm, "[ticks, __bs.pendingTimers()]") == [2, 0]


def test_timers_set_by_callbacks_wait_for_the_next_call(vm: VM) -> None:
    vm.eval("__bs.now = 0; globalThis.n = 0;"
            "setTimeout(function again() { n++; setTimeout(again, 0) })")
    assert [fire(vm, 0), fire(vm, 0)] == [1, 1]
    assert js(vm, "[n, __bs.pendingTimers()]") == [2, 1]


def test_a_throwing_timer_is_logged_and_the_others_still_run(vm: VM) -> None:
    vm.eval("__bs.now = 0; globalThis.ran = false;"
            "setTimeout(() => { throw new RangeError('tick failed') }, 1);"
            "setTimeout(() => { ran = true }, 2);")
    assert fire(vm, 5) == 2
    assert js(vm, "ran") is True
    [(stream, text)] = logs(vm)
    assert stream == "stderr"
    assert text.startswith("Uncaught RangeError: tick failed")


def test_odd_delays_mean_now_and_ids_are_distinct_positive_integers(vm: VM) -> None:
    ids = js(vm, "(__bs.now = 50, [setTimeout(() => {}, -5), setTimeout(() => {}, NaN),"
                 " setTimeout(() => {}, 'soon'), setTimeout(() => {})])")
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(set(ids)) == 4
    assert js(vm, "__bs.nextTimerDue()") == 50
    assert fire(vm, 50) == 4


def test_an_infinite_delay_means_now_and_a_long_one_is_kept(vm: VM) -> None:
    vm.eval("__bs.now = 0; setTimeout(() => {}, Infinity); setTimeout(() => {}, 40 * 86400000)")
    assert fire(vm, 0) == 1
    assert js(vm, "__bs.nextTimerDue()") == 40 * 86400000


def test_queue_microtask_runs_with_the_promise_jobs(vm: VM) -> None:
    vm.eval("globalThis.seen = []; queueMicrotask(() => seen.push('micro'));"
            "Promise.resolve().then(() => seen.push('promise')); seen.push('sync')")
    vm.run_jobs()
    assert js(vm, "seen") == ["sync", "micro", "promise"]


# ---------------------------------------------------------------------------- fetch


def take_fetches(vm: VM) -> list[dict[str, Any]]:
    taken: list[dict[str, Any]] = js(vm, "__bs.takeFetches()")
    return taken


def respond(vm: VM, fetch_id: int, body: bytes | str = b"", status: int = 200,
            headers: list[list[str]] | None = None, url: str = "") -> None:
    response = {"status": status, "statusText": "Whatever", "url": url,
                "headers": headers or [], "body": b64(body)}
    vm.eval(f"__bs.fetchDone({fetch_id}, {json.dumps(response)})")
    vm.run_jobs()


def test_fetch_queues_the_request_for_the_host(vm: VM) -> None:
    vm.eval("fetch('https://api.example.com/items?q=1#frag', {method: 'post', "
            "headers: {'X-Token': 'abc', 'Content-Type': 'application/json'},"
            "body: JSON.stringify({name: 'wörld'})})")
    [request] = take_fetches(vm)
    assert request == {
        "id": request["id"], "url": "https://api.example.com/items?q=1", "method": "POST",
        "headers": [["x-token", "abc"], ["content-type", "application/json"]],
        "body": b64('{"name":"wörld"}')}
    assert take_fetches(vm) == []
    assert js(vm, "__bs.pendingFetches()") == 1


@pytest.mark.parametrize(("body", "sent", "content_type"), [
    ("'plain'", b"plain", "text/plain;charset=UTF-8"),
    ("new Uint8Array([0, 255, 7]).subarray(1)", b"\xff\x07", None),
    ("new Uint16Array([0x0201]).buffer", b"\x01\x02", None),
    ("new URLSearchParams({q: 'a b', n: 'é'})", b"q=a+b&n=%C3%A9",
     "application/x-www-form-urlencoded;charset=UTF-8"),
    ("null", None, None),
])
def test_fetch_sends_each_kind_of_body_base64_encoded(
        vm: VM, body: str, sent: bytes | None, content_type: str | None) -> None:
    vm.eval(f"fetch('https://h.example/', {{method: 'PUT', body: {body}}})")
    [request] = take_fetches(vm)
    assert request["body"] == (None if sent is None else b64(sent))
    assert dict(request["headers"]).get("content-type") == content_type


def test_fetch_resolves_with_the_hosts_response(vm: VM) -> None:
    vm.eval("globalThis.result = null; fetch('https://api.example.com/x').then(async (res) => {"
            " result = {ok: res.ok, status: res.status, statusText: res.statusText, url: res.url,"
            " type: res.headers.get('Content-Type'), body: await res.json(), used: res.bodyUsed,"
            " redirected: res.redirected} })")
    [request] = take_fetches(vm)
    respond(vm, request["id"], json.dumps({"hello": "wörld"}), status=201,
            headers=[["Content-Type", "application/json"]], url="https://api.example.com/x")
    assert js(vm, "result") == {
        "ok": True, "status": 201, "statusText": "Whatever", "url": "https://api.example.com/x",
        "type": "application/json", "body": {"hello": "wörld"}, "used": True, "redirected": False}
    assert js(vm, "__bs.pendingFetches()") == 0


def test_fetched_bodies_read_once_as_text_bytes_or_clones(vm: VM) -> None:
    vm.eval("globalThis.res = null; fetch('https://h.example/').then((r) => { res = r })")
    [request] = take_fetches(vm)
    respond(vm, request["id"], "héllo".encode(), status=404, url="https://h.example/moved")
    result = js_async(vm, """
        const copy = res.clone();
        const text = await res.text();
        const again = await res.text().then(() => 'read twice', (e) => e.name);
        const bytes = Array.from(new Uint8Array(await copy.arrayBuffer()));
        return {ok: res.ok, text, again, bytes, redirected: res.redirected};
    """)
    assert result == {"ok": False, "text": "héllo", "again": "TypeError",
                      "bytes": list("héllo".encode()), "redirected": True}


def test_a_failed_fetch_rejects_with_a_type_error(vm: VM) -> None:
    vm.eval("globalThis.failure = null;"
            "fetch('https://down.example/').catch((e) => { failure = [e.name, e.message] })")
    [request] = take_fetches(vm)
    vm.eval(f"__bs.fetchFailed({request['id']}, 'connection refused')")
    vm.run_jobs()
    assert js(vm, "failure") == ["TypeError", "connection refused"]


def test_aborting_a_taken_fetch_rejects_and_tells_the_host(vm: VM) -> None:
    vm.eval("globalThis.c = new AbortController(); globalThis.failure = null;"
            "fetch('https://slow.example/', {signal: c.signal}).catch((e) => {"
            " failure = [e.name, e instanceof DOMException, e.code] })")
    [request] = take_fetches(vm)
    vm.eval("c.abort()")
    vm.run_jobs()
    assert js(vm, "failure") == ["AbortError", True, 20]
    assert js(vm, "[__bs.abortedFetches(), __bs.abortedFetches(), __bs.pendingFetches()]") == [
        [request["id"]], [], 0]
    respond(vm, request["id"], "too late")   # ignored: the promise is settled
    assert js(vm, "failure") == ["AbortError", True, 20]


def test_a_fetch_aborted_before_the_host_took_it_is_dropped(vm: VM) -> None:
    vm.eval("const c = new AbortController(); fetch('https://h.example/', {signal: c.signal})"
            ".catch(() => {}); c.abort('changed my mind')")
    assert take_fetches(vm) == []
    assert js(vm, "[__bs.abortedFetches(), __bs.pendingFetches()]") == [[], 0]


def test_an_already_aborted_signal_rejects_without_a_request(vm: VM) -> None:
    outcome = js_async(vm, "await fetch('https://h.example/', {signal: AbortSignal.abort()})")
    assert outcome["error"]["name"] == "AbortError"
    assert take_fetches(vm) == []


def test_abort_signal_timeout_runs_on_the_driver_clock(vm: VM) -> None:
    vm.eval("__bs.now = 0; globalThis.failure = null;"
            "fetch('https://h.example/', {signal: AbortSignal.timeout(500)})"
            ".catch((e) => { failure = e.name })")
    [request] = take_fetches(vm)
    fire(vm, 499)
    vm.run_jobs()
    assert js(vm, "failure") is None
    fire(vm, 500)
    vm.run_jobs()
    assert js(vm, "failure") == "TimeoutError"
    assert js(vm, "__bs.abortedFetches()") == [request["id"]]


@pytest.mark.parametrize("url", ["/relative", "not a url", "https://user:pw@h.example/"])
def test_fetch_rejects_urls_it_cannot_send(vm: VM, url: str) -> None:
    outcome = js_async(vm, f"await fetch({json.dumps(url)})")
    assert outcome["error"]["name"] == "TypeError"
    assert take_fetches(vm) == []


def test_unknown_fetch_ids_are_ignored(vm: VM) -> None:
    vm.eval("__bs.fetchDone(999, {status: 200, headers: [], body: ''}); __bs.fetchFailed(998, 'x')")
    assert js(vm, "__bs.pendingFetches()") == 0


def test_user_code_can_build_responses_and_headers(vm: VM) -> None:
    result = js_async(vm, """
        const made = new Response('hi', {status: 201, headers: {'X-A': '1'}});
        const json = Response.json({a: 1}, {status: 202});
        const h = new Headers([['Accept', 'a'], ['accept', 'b'], ['Set-Cookie', 'x=1']]);
        let bad;
        try { new Response('x', {status: 99}) } catch (e) { bad = e.name }
        return {
            made: [made.status, made.ok, made.headers.get('x-a'), made.headers.get('content-type'),
                   await made.text()],
            json: [json.status, json.headers.get('content-type'), await json.json()],
            headers: [...h], bad,
        };
    """)
    assert result == {
        "made": [201, True, "1", "text/plain;charset=UTF-8", "hi"],
        "json": [202, "application/json", {"a": 1}],
        "headers": [["accept", "a, b"], ["set-cookie", "x=1"]],
        "bad": "RangeError"}


# ---------------------------------------------------------------------------- crypto


@pytest.mark.parametrize("alg", ["SHA-1", "SHA-256", "SHA-384", "SHA-512"])
@pytest.mark.parametrize("data", [b"abc", "héllo".encode(), bytes(range(256))])
def test_digest_matches_hashlib(vm: VM, alg: str, data: bytes) -> None:
    digest = js_async(vm, f"return Array.from(new Uint8Array(await crypto.subtle.digest("
                          f"'{alg}', new Uint8Array({list(data)}))))")
    assert bytes(digest) == hashlib.new(alg.replace("-", "").lower(), data).digest()


def test_hmac_signs_like_python_and_verifies(vm: VM) -> None:
    result = js_async(vm, """
        const enc = new TextEncoder();
        const key = await crypto.subtle.importKey('raw', enc.encode('s3cret'),
            {name: 'HMAC', hash: 'SHA-256'}, false, ['sign', 'verify']);
        const sig = await crypto.subtle.sign('HMAC', key, enc.encode('payload'));
        return {
            sig: Array.from(new Uint8Array(sig)),
            good: await crypto.subtle.verify('HMAC', key, sig, enc.encode('payload')),
            bad: await crypto.subtle.verify('HMAC', key, sig, enc.encode('payloaD')),
            algorithm: key.algorithm, usages: key.usages, type: key.type,
        };
    """)
    assert bytes(result["sig"]) == hmac.new(b"s3cret", b"payload", "sha256").digest()
    assert (result["good"], result["bad"]) == (True, False)
    assert result["algorithm"] == {"name": "HMAC", "hash": {"name": "SHA-256"}, "length": 48}
    assert (result["usages"], result["type"]) == (["sign", "verify"], "secret")


@pytest.mark.parametrize(("body", "error"), [
    ("await crypto.subtle.importKey('raw', KEY, {name: 'AES-GCM'}, false, ['encrypt'])",
     "NotSupportedError"),
    ("await crypto.subtle.importKey('raw', KEY, {name: 'HMAC', hash: 'MD5'}, false, ['sign'])",
     "NotSupportedError"),
    ("const k = await crypto.subtle.importKey('raw', KEY, {name: 'HMAC', hash: 'SHA-1'}, false,"
     " ['verify']); await crypto.subtle.sign('HMAC', k, KEY)",
     "InvalidAccessError"),
    ("await crypto.subtle.digest('MD5', KEY)", "NotSupportedError"),
    ("await crypto.subtle.encrypt({name: 'AES-GCM'}, null, KEY)", "NotSupportedError"),
])
def test_crypto_misuse_rejects_like_webcrypto(vm: VM, body: str, error: str) -> None:
    outcome = js_async(vm, "const KEY = new Uint8Array(4);" + body)
    assert outcome["error"]["name"] == error


def test_get_random_values_fills_the_array_it_is_given(vm: VM) -> None:
    result = js(vm, "(() => { const a = new Uint32Array(8);"
                    " const same = crypto.getRandomValues(a) === a;"
                    " const b = crypto.getRandomValues(new Uint8Array(65536));"
                    " return [same, Array.from(a), b.some((x) => x !== 0)] })()")
    same, values, nonzero = result
    assert same is True
    assert nonzero is True
    assert len(set(values)) == 8


@pytest.mark.parametrize(("array", "error"), [
    ("new Uint8Array(65537)", "QuotaExceededError"),
    ("new Float64Array(2)", "TypeMismatchError"),
])
def test_get_random_values_refuses_what_webcrypto_refuses(vm: VM, array: str, error: str) -> None:
    assert thrown(vm, f"crypto.getRandomValues({array})") == error


def test_random_uuid_is_a_fresh_version_4_uuid(vm: VM) -> None:
    uuids = js(vm, "Array.from({length: 50}, () => crypto.randomUUID())")
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(u) for u in uuids)
    assert len(set(uuids)) == 50


# ---------------------------------------------------------------------------- encoding


def test_text_encoder_round_trips_non_ascii(vm: VM) -> None:
    text = "héllo wörld — 日本語 😀"
    encoded = js(vm, f"Array.from(new TextEncoder().encode({json.dumps(text)}))")
    assert bytes(encoded) == text.encode()
    assert js(vm, f"new TextDecoder().decode(new Uint8Array({encoded}))") == text


def test_text_encoder_replaces_lone_surrogates(vm: VM) -> None:
    assert bytes(js(vm, r"Array.from(new TextEncoder().encode('a\ud800b'))")) == "a\ufffdb".encode()
    into = js(vm, "new TextEncoder().encodeInto('aé😀', new Uint8Array(4))")
    assert into == {"read": 2, "written": 3}


@pytest.mark.parametrize(("data", "text"), [
    (b"\xef\xbb\xbfbom", "bom"),
    (b"a\xffb", "a\ufffdb"),
    (b"\xe2\x82", "\ufffd"),
    (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),   # an encoded surrogate is not UTF-8
    (b"\xf0\x9f\x98\x80", "😀"),
])
def test_text_decoder_follows_the_encoding_standard(vm: VM, data: bytes, text: str) -> None:
    assert js(vm, f"new TextDecoder().decode(new Uint8Array({list(data)}))") == text


def test_text_decoder_fatal_mode_and_labels(vm: VM) -> None:
    fatal = "new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0xc3, 0x28]))"
    assert thrown(vm, fatal) == "TypeError"
    assert thrown(vm, "new TextDecoder('latin1')") == "RangeError"
    assert js(vm, "new TextDecoder('UTF8').encoding") == "utf-8"


def test_text_decoder_streams_across_split_characters(vm: VM) -> None:
    parts = js(vm, "(() => { const d = new TextDecoder();"
                   " const b = new TextEncoder().encode('a😀é');"
                   " return [d.decode(b.subarray(0, 3), {stream: true}),"
                   " d.decode(b.subarray(3, 6), {stream: true}), d.decode(b.subarray(6))] })()")
    assert parts == ["a", "😀", "é"]


def test_atob_and_btoa(vm: VM) -> None:
    assert js(vm, "[btoa('hello'), atob(' aGVs bG8= '), atob('YQ'), btoa('\\xff')]") == [
        "aGVsbG8=", "hello", "a", "/w=="]
    for call in ["atob('@@@')", "atob('Y')", "btoa('é€')"]:
        assert thrown(vm, call) == "InvalidCharacterError"
    assert js(vm, "(() => { try { atob('@') } catch (e) { return e instanceof DOMException } })()")


# ---------------------------------------------------------------------------- URL


@pytest.mark.parametrize(("url", "base", "href"), [
    ("https://Example.COM:443/a/./b/../c?x=1#h", None, "https://example.com/a/c?x=1#h"),
    ("http://example.com:8080", None, "http://example.com:8080/"),
    ("https://a.example/p a?q=\"x y\"#f g", None, "https://a.example/p%20a?q=%22x%20y%22#f%20g"),
    ("../d?q", "http://a/b/c/e", "http://a/b/d?q"),
    ("/abs", "https://h.example/x/y?z", "https://h.example/abs"),
    ("?only=query", "https://h.example/x/y?z#f", "https://h.example/x/y?only=query"),
    ("#frag", "https://h.example/x?y", "https://h.example/x?y#frag"),
    ("//other.example/p", "https://h.example/", "https://other.example/p"),
    ("http://münchen.de/", None, "http://xn--mnchen-3ya.de/"),
    ("http://[0:0::1]:8080/", None, "http://[::1]:8080/"),
    ("http://0x7f.1/", None, "http://127.0.0.1/"),
    ("mailto:someone@example.com?subject=hi", None, "mailto:someone@example.com?subject=hi"),
    ("  https://h.example/\tx\n ", None, "https://h.example/x"),
])
def test_url_parses_and_resolves_like_browsers(
        vm: VM, url: str, base: str | None, href: str) -> None:
    args = json.dumps(url) + ("" if base is None else f", {json.dumps(base)}")
    assert js(vm, f"new URL({args}).href") == href


@pytest.mark.parametrize("url", ["", "no-scheme", "http://", "https://a b/", "http://h:99999/",
                                 "http://[1::2::3]/", "http://1.2.3.4.5/"])
def test_url_rejects_invalid_input_with_a_type_error(vm: VM, url: str) -> None:
    assert thrown(vm, f"new URL({json.dumps(url)})") == "TypeError"
    assert js(vm, f"URL.canParse({json.dumps(url)})") is False


def test_url_components(vm: VM) -> None:
    parts = js(vm, "(() => { const u = new URL('https://user:pw@api.example.com:8443/v1/items?id=7&x#top');"
                   " return [u.protocol, u.username, u.password, u.host, u.hostname, u.port,"
                   " u.pathname, u.search, u.hash, u.origin, String(u), JSON.stringify({u})] })()")
    assert parts == ["https:", "user", "pw", "api.example.com:8443", "api.example.com", "8443",
                     "/v1/items", "?id=7&x", "#top", "https://api.example.com:8443",
                     "https://user:pw@api.example.com:8443/v1/items?id=7&x#top",
                     '{"u":"https://user:pw@api.example.com:8443/v1/items?id=7&x#top"}']


def test_search_params_are_live_linked_to_their_url(vm: VM) -> None:
    result = js(vm, "(() => { const u = new URL('https://h.example/p?a=1&b=%20x+y');"
                    " const before = [u.searchParams.get('b'), [...u.searchParams.keys()]];"
                    " u.searchParams.append('c', 'é &'); u.searchParams.delete('a');"
                    " const after = u.href; u.search = '?z=9';"
                    " return [before, after, u.searchParams.get('z'), u.searchParams.size] })()")
    assert result == [[" x y", ["a", "b"]], "https://h.example/p?b=+x+y&c=%C3%A9+%26", "9", 1]


def test_url_setters(vm: VM) -> None:
    result = js(vm, "(() => { const u = new URL('http://a.example:81/p?q#h');"
                    " u.protocol = 'https'; u.hostname = 'b.example'; u.port = '443';"
                    " u.pathname = '/x y'; u.hash = ''; const ok = u.href;"
                    " u.port = 'nope'; u.hostname = 'bad host'; u.protocol = 'mailto';"
                    " return [ok, u.href] })()")
    assert result == ["https://b.example/x%20y?q"] * 2


def test_url_search_params_on_their_own(vm: VM) -> None:
    result = js(vm, "(() => { const p = new URLSearchParams('?a=1&b=2&a=3&c');"
                    " p.set('b', 'x'); p.sort();"
                    " return [p.getAll('a'), p.get('c'), p.has('a', '3'), p.toString(),"
                    " new URLSearchParams({k: 'v w'}).toString(),"
                    " new URLSearchParams([['x', 'y']]).get('x')] })()")
    assert result == [["1", "3"], "", True, "a=1&a=3&b=x&c=", "k=v+w", "y"]


# ---------------------------------------------------------------------------- events and clones


def test_abort_controller_dispatches_abort_once(vm: VM) -> None:
    result = js(vm, "(() => { const c = new AbortController(); const seen = [];"
                    " c.signal.addEventListener('abort', (e) => seen.push(e.type), {once: true});"
                    " c.signal.onabort = () => seen.push('onabort');"
                    " c.abort('why'); c.abort('again');"
                    " let thrown; try { c.signal.throwIfAborted() } catch (e) { thrown = e }"
                    " return [c.signal.aborted, c.signal.reason, thrown, seen] })()")
    assert result == [True, "why", "why", ["onabort", "abort"]]


def test_listeners_can_be_removed_by_a_signal_and_signals_combined(vm: VM) -> None:
    result = js(vm, "(() => { const t = new EventTarget(); const c = new AbortController();"
                    " let n = 0;"
                    " t.addEventListener('x', () => n++, {signal: c.signal});"
                    " t.dispatchEvent(new Event('x')); c.abort(); t.dispatchEvent(new Event('x'));"
                    " const a = new AbortController(), b = new AbortController();"
                    " const any = AbortSignal.any([a.signal, b.signal]); b.abort('b went');"
                    " return [n, any.aborted, any.reason] })()")
    assert result == [1, True, "b went"]


def test_a_throwing_listener_is_reported_and_the_others_run(vm: VM) -> None:
    result = js(vm, "(() => { const t = new EventTarget(); let ran = false;"
                    " t.addEventListener('x', () => { throw new Error('listener broke') });"
                    " t.addEventListener('x', () => { ran = true });"
                    " t.dispatchEvent(new Event('x')); return ran })()")
    assert result is True
    [(stream, text)] = logs(vm)
    assert stream == "stderr"
    assert text.startswith("Uncaught Error: listener broke")


def test_structured_clone_copies_data_deeply(vm: VM) -> None:
    result = js(vm, """(() => {
        const buf = new ArrayBuffer(8);
        const src = {when: new Date(5), map: new Map([['k', {n: 1}]]), set: new Set([1]),
                     bytes: new Uint8Array(buf, 2, 4), view: new DataView(buf), big: 10n};
        src.self = src;
        const c = structuredClone(src);
        c.map.get('k').n = 2;
        return [c !== src, c.self === c, c.when instanceof Date && c.when.getTime(),
                src.map.get('k').n, c.set.has(1), c.bytes.buffer === c.view.buffer,
                c.bytes.buffer !== buf, c.bytes.byteOffset, typeof c.big];
    })()""")
    assert result == [True, True, 5, 1, True, True, True, 2, "bigint"]


def test_structured_clone_refuses_functions(vm: VM) -> None:
    name = js(vm, "(() => { try { structuredClone({f() {}}) } catch (e) { return e.name } })()")
    assert name == "DataCloneError"


# ---------------------------------------------------------------------------- the host side


def host(request: dict[str, Any] | str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(
        hostcalls.handle(request if isinstance(request, str) else json.dumps(request)))
    return answer


def test_host_random_returns_fresh_bytes() -> None:
    first, second = (base64.b64decode(host({"op": "random", "n": 32})["b64"]) for _ in range(2))
    assert len(first) == 32
    assert first != second
    assert host({"op": "random", "n": 0}) == {"b64": ""}


def test_host_digest_and_hmac_match_hashlib() -> None:
    data, key = b"some data \x00\xff", b"key"
    assert host({"op": "digest", "alg": "SHA-384", "data": b64(data)}) == {
        "b64": b64(hashlib.sha384(data).digest())}
    assert host({"op": "hmac", "alg": "SHA-512", "key": b64(key), "data": b64(data)}) == {
        "b64": b64(hmac.new(key, data, "sha512").digest())}


OVERSIZED = "A" * (((10 << 20) + 3) // 3 * 4)


@pytest.mark.parametrize("request_text", [
    "", "not json", "[]", "null", '{"op": "nope"}', '{"op": 1}', '{"no": "op"}',
    '{"op": "random", "n": 65537}', '{"op": "random", "n": -1}', '{"op": "random", "n": 1.5}',
    '{"op": "random", "n": true}', '{"op": "random"}',
    '{"op": "digest", "alg": "MD5", "data": ""}', '{"op": "digest", "alg": "SHA-256"}',
    '{"op": "digest", "alg": "SHA-256", "data": "***"}',
    '{"op": "digest", "alg": "SHA-256", "data": "é"}',
    '{"op": "hmac", "alg": "SHA-256", "key": 1, "data": ""}',
    json.dumps({"op": "digest", "alg": "SHA-256", "data": OVERSIZED}),
])
def test_host_answers_bad_requests_with_an_error(request_text: str) -> None:
    answer = host(request_text)
    assert set(answer) == {"error"}
    assert isinstance(answer["error"], str)
    assert answer["error"]
