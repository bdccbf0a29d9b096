"""Every call of the Python client sends what @statebacked/client 0.1.37 sends for it: the
official client runs each call against a recording `fetch` (official_wire.mjs), ours against a
recording httpx transport, both with the same canned answers, and the requests are compared
(method, URL, headers, JSON/form body, multipart parts in order)."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import gzip
import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from backstate_client import Client

from tests.compat.conftest import NODE_MODULES

HERE = Path(__file__).resolve().parent
GZIPPED = gzip.compress(b"export default 1;", mtime=0)
FROM = "2024-01-02T03:04:05.678Z"
TO = "2024-01-03T00:00:00.000Z"
PROVISIONAL = {
    "machineVersionId": "signed-version", "machineVersionMigrationId": "signed-migration",
    "codeUploadUrl": "http://uploads.example/upload?x=1",
    "codeUploadFields": {"key": "k1", "policy": "p1", "content-type": "text/plain"},
}  # fmt: skip
# Headers an HTTP client adds by itself (the official client's fetch adds them too, below it).
TRANSPORT_HEADERS = {
    "host", "accept", "accept-encoding", "connection", "user-agent", "content-length",
}  # fmt: skip


def when(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


# (the official client's call, ours)
CALLS: list[tuple[str, Callable[[Client], Any]]] = [
    ('c => c.machines.list({cursor: "c1"})', lambda c: c.machines.list(cursor="c1")),
    ('c => c.machines.get("m")', lambda c: c.machines.get("m")),
    ('c => c.machines.create("m")', lambda c: c.machines.create("m")),
    ('c => c.machines.dangerously.delete("newm", {dangerDataWillBeDeletedForever: true})',
     lambda c: c.machines.dangerously.delete("newm", danger_data_will_be_deleted_forever=True)),
    ('c => c.machineVersions.list("m", {cursor: "c2"})',
     lambda c: c.machine_versions.list("m", cursor="c2")),
    ('c => c.machineVersions.provisionallyCreate("m", true)',
     lambda c: c.machine_versions.provisionally_create("m", gzip=True)),
    ('c => c.machineVersions.provisionallyCreate("m")',
     lambda c: c.machine_versions.provisionally_create("m")),
    ('c => c.machineVersions.finalize("m", "sig", {clientInfo: "v1", makeCurrent: true})',
     lambda c: c.machine_versions.finalize("m", "sig", client_info="v1", make_current=True)),
    ('c => c.machineVersions.create("m", {code: "export default 1;"})',
     lambda c: c.machine_versions.create("m", "export default 1;", gzip=False)),
    (f'c => c.machineVersions.create("m", {{gzippedCode: new Uint8Array({list(GZIPPED)}), '
     'clientInfo: "v2", makeCurrent: false})',
     lambda c: c.machine_versions.create(
         "m", gzipped_code=GZIPPED, client_info="v2", make_current=False)),
    (f'c => c.machineVersionMigrations.create("m", {{fromMachineVersionId: "ver_a", '
     f'toMachineVersionId: "ver_b", gzippedCode: new Uint8Array({list(GZIPPED)})}})',
     lambda c: c.machine_version_migrations.create("m", "ver_a", "ver_b", gzipped_code=GZIPPED)),
    ('c => c.machineVersionMigrations.finalize("m", "sig")',
     lambda c: c.machine_version_migrations.finalize("m", "sig")),
    ('c => c.machineInstances.list("m", {cursor: "c3"})',
     lambda c: c.machine_instances.list("m", cursor="c3")),
    ('c => c.machineInstances.listTransitions("m", "i", {cursor: "c4"})',
     lambda c: c.machine_instances.list_transitions("m", "i", cursor="c4")),
    ('c => c.machineInstances.create("m", {slug: "i", context: {a: [1], b: "Zoë 🎉"}, '
     'machineVersionId: "ver_1"})',
     lambda c: c.machine_instances.create(
         "m", "i", context={"a": [1], "b": "Zoë 🎉"}, machine_version_id="ver_1")),
    ('c => c.machineInstances.create("m", {slug: "i"})',
     lambda c: c.machine_instances.create("m", "i")),
    ('c => c.machineInstances.get("m", "i")', lambda c: c.machine_instances.get("m", "i")),
    ('c => c.machineInstances.sendEvent("m", "i", {event: "go"})',
     lambda c: c.machine_instances.send_event("m", "i", "go")),
    ('c => c.machineInstances.sendEvent("m", "i", {event: {type: "set", v: 3}})',
     lambda c: c.machine_instances.send_event("m", "i", {"type": "set", "v": 3})),
    ('c => c.machineInstances.dangerously.setStatus("m", "i", {status: "paused"})',
     lambda c: c.machine_instances.dangerously.set_status("m", "i", "paused")),
    ('c => c.machineInstances.dangerously.delete("m", "i", '
     '{dangerDataWillBeDeletedForever: true})',
     lambda c: c.machine_instances.dangerously.delete(
         "m", "i", danger_data_will_be_deleted_forever=True)),
    ('c => c.machineInstances.admin.get("m", "i")',
     lambda c: c.machine_instances.admin.get("m", "i")),
    ('c => c.machineInstances.admin.updateDesiredVersion("m", "i", '
     '{targetMachineVersionId: "ver_2"})',
     lambda c: c.machine_instances.admin.update_desired_version("m", "i", "ver_2")),
    (f'c => c.logs.retrieve(new Date("{FROM}"), {{machineName: "m", instanceName: "i", '
     f'machineVersionId: "ver_1", to: new Date("{TO}")}})',
     lambda c: c.logs.retrieve(when(FROM), machine_name="m", instance_name="i",
                               machine_version_id="ver_1", to=when(TO))),
    (f'c => c.logs.retrieve(new Date("{FROM}"))', lambda c: c.logs.retrieve(when(FROM))),
    ('c => c.identityProviders.list({cursor: "c5"})',
     lambda c: c.identity_providers.list(cursor="c5")),
    ('c => c.identityProviders.upsert({algs: ["HS256"], mapping: {"sub.$": "$.sub"}, '
     'aud: "a", iss: "i", key: "c2VjcmV0"})',
     lambda c: c.identity_providers.upsert(
         algs=["HS256"], mapping={"sub.$": "$.sub"}, aud="a", iss="i", key=b"secret")),
    ('c => c.identityProviders.upsert({algs: ["RS256"], mapping: {}, iss: "i", '
     'jwksUrl: "https://x/jwks.json"})',
     lambda c: c.identity_providers.upsert(
         algs=["RS256"], mapping={}, iss="i", jwks_url="https://x/jwks.json")),
    ('c => c.identityProviders.delete({aud: "a"})',
     lambda c: c.identity_providers.delete(aud="a")),
    ('c => c.tokenProviders.list()', lambda c: c.token_providers.list()),
    ('c => c.tokenProviders.upsert({service: "svc", keyId: "sbk_1", mapping: {"sub.$": "$.sub"}})',
     lambda c: c.token_providers.upsert(
         service="svc", key_id="sbk_1", mapping={"sub.$": "$.sub"})),
    ('c => c.tokenProviders.delete("svc")', lambda c: c.token_providers.delete("svc")),
    ('c => c.tokens.exchange({orgId: "org_2", service: "svc", token: "idp-token"})',
     lambda c: c.tokens.exchange("org_2", "svc", "idp-token")),
    ('c => c.billing.get()', lambda c: c.billing.get()),
    ('c => c.orgs.list()', lambda c: c.orgs.list()),
    ('c => c.orgs.create({name: "acme"})', lambda c: c.orgs.create("acme")),
    ('c => c.keys.list({cursor: "c6"})', lambda c: c.keys.list(cursor="c6")),
    ('c => c.keys.create({name: "k", use: "ci"})', lambda c: c.keys.create("k", use="ci")),
    ('c => c.keys.create({name: "k", scopes: ["logs.read"]})',
     lambda c: c.keys.create("k", scopes=["logs.read"])),
    ('c => c.keys.delete("sbk_1")', lambda c: c.keys.delete("sbk_1")),
]  # fmt: skip

# The official client also sends the migration's code inside this JSON body (a Uint8Array
# serialized as {"0": 31, ...}); the server ignores it and ours does not send it.
JS_ONLY_BODY_KEYS = {"gzippedCode", "code"}
TEXT_DIFFERS = {"/machines/m/migrations"}


def official() -> list[list[dict[str, Any]]]:
    if shutil.which("node") is None or not NODE_MODULES.is_dir():
        pytest.skip("needs node and tests/compat/node_modules (make setup)")
    sources = json.dumps([source for source, _ in CALLS])
    done = subprocess.run(
        ["node", str(HERE / "official_wire.mjs"), sources],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls: list[list[dict[str, Any]]] = json.loads(done.stdout)
    return [[normalize_js(request) for request in requests] for requests in calls]


def answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/upload":
        return httpx.Response(204)
    if path.endswith(("/v", "/migrations")) and request.method == "POST":
        return httpx.Response(200, json=PROVISIONAL)
    if path == "/tokens":
        return httpx.Response(200, json={"access_token": "a.e30.b"})
    return httpx.Response(200, json={
        "ts": 1, "state": "s", "tags": [], "done": False, "maxTimestamp": FROM, "logs": [],
    })  # fmt: skip


def ours() -> list[list[dict[str, Any]]]:
    recorded: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        recorded.append(normalize_httpx(request))
        return answer(request)

    http = httpx.Client(transport=httpx.MockTransport(record))
    calls = []
    with Client("the-token", api_host="http://api.example", org_id="org_1",
                act_as={"sub": "me", "n": 1}, http_client=http) as client:  # fmt: skip
        for _, call in CALLS:
            recorded.clear()
            call(client)
            calls.append(list(recorded))
    return calls


def normalize_js(request: dict[str, Any]) -> dict[str, Any]:
    body = request["body"]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    if body is None:
        content: Any = None
    elif "parts" in body:
        content = [
            (p["name"], p.get("value"), p.get("filename"), p.get("type"),
             base64.b64decode(p["base64"]) if "base64" in p else None)
            for p in body["parts"]
        ]  # fmt: skip
    else:
        content = parse_body(headers.get("content-type", ""), body["text"].encode())
        if isinstance(content, dict) and JS_ONLY_BODY_KEYS & set(content):
            content = {k: v for k, v in content.items() if k not in JS_ONLY_BODY_KEYS}
        elif isinstance(content, dict):  # then ours must be the very same JSON text
            content = (content, body["text"])
    return {"method": request["method"], "url": split_url(request["url"]),
            "headers": headers, "body": content}  # fmt: skip


def normalize_httpx(request: httpx.Request) -> dict[str, Any]:
    headers = {k: v for k, v in request.headers.items() if k not in TRANSPORT_HEADERS}
    content_type = headers.get("content-type", "")
    body = request.read()
    content: Any = None
    if content_type.startswith("multipart/form-data"):
        del headers["content-type"]  # fetch sets it (with its boundary) from a FormData body
        content = multipart(content_type, body)
    elif body:
        content = parse_body(content_type, body)
        if isinstance(content, dict) and request.url.path not in TEXT_DIFFERS:
            content = (content, body.decode())
    return {"method": request.method, "url": split_url(str(request.url)),
            "headers": headers, "body": content}  # fmt: skip


def parse_body(content_type: str, body: bytes) -> Any:
    if content_type == "application/x-www-form-urlencoded":
        return parse_qsl(body.decode())
    return json.loads(body)


def multipart(content_type: str, body: bytes) -> list[Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if filename is None:
            parts.append((name, payload.decode(), None, None, None))
        else:
            parts.append((name, None, filename, part.get_content_type(), payload))
    return parts


def split_url(url: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc, parts.path, parse_qsl(parts.query, keep_blank_values=True)


def test_every_call_sends_what_the_official_client_sends() -> None:
    theirs, mine = official(), ours()
    for (source, _), expected, got in zip(CALLS, theirs, mine, strict=True):
        assert got == expected, source


def test_what_the_comparison_sees() -> None:
    """The comparison is not vacuous: the recorded requests hold what the contract says."""
    by_source = dict(zip((source for source, _ in CALLS), official(), strict=True))
    delete = by_source[
        'c => c.machines.dangerously.delete("newm", {dangerDataWillBeDeletedForever: true})'
    ][0]
    assert delete["body"][0]["hmacSha256OfMachineNameWithMachineNameKey"] == (
        "AksbtEh9yF9q5NFs77zQ5xHuaUFtTA1QzYvQaQgwJuE"  # the contract's verified example
    )
    upload = next(r for r in by_source[CALLS[9][0]] if r["url"][2] == "/upload")
    assert [part[0] for part in upload["body"]] == [
        "key", "policy", "content-type", "content-encoding", "file",
    ]  # fmt: skip
    assert upload["body"][-1][2:] == ("m.js", "application/javascript", GZIPPED)
    assert "authorization" not in upload["headers"]
    first = by_source['c => c.machines.list({cursor: "c1"})'][0]
    assert first["headers"] == {
        "content-type": "application/json", "x-statebacked-org-id": "org_1",
        "x-statebacked-act": '{"sub":"me","n":1}', "authorization": "Bearer the-token",
    }  # fmt: skip
    assert ours()[0] == [first]
