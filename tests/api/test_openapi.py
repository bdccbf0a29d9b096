"""The OpenAPI document says what the server does: schemathesis fuzzes a real server from it.

Every status an operation answers must be documented, every response must match its documented
schema, and nothing may answer 5xx but the deliberately unsupported member routes (501);
`schemathesis.toml` beside this file says which checks are adjusted and why.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from api.identity import anonymous
from api.identity.exchange import AUDIENCE_PREFIX
from api.tokens import mint
from tests.conftest import Server
from tests.support.bundles import COUNTER
from tests.support.client import Api, assert_error

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = 25
SEED = 13
FUZZ_TIMEOUT_S = 300
IDP_SECRET = b"a shared key the fuzzer's identity provider signs with"


def test_the_document_lists_error_statuses_with_the_error_shape(server: Server) -> None:
    document = httpx.get(server.url + "/openapi.json").json()
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["error", "code"]
    assert set(error_body["properties"]) == {"error", "code", "parameter"}
    statuses = {
        (method.upper(), path): set(operation["responses"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert statuses[("GET", "/machines/{machineName}/i/{instanceName}")] == {
        "200",
        "400",
        "403",
        "404",
    }
    assert statuses[("POST", "/machines")] == {"201", "400", "403", "409", "413"}
    assert statuses[("POST", "/uploads/code")] == {"204", "400", "404", "413"}
    assert statuses[("PUT", "/{invitationCode}")] == {"400", "403", "501"}
    assert statuses[("POST", "/tokens")] == {"200", "400", "403", "413"}
    assert statuses[("DELETE", "/idps")] == {"204", "400", "403", "404", "413"}
    assert statuses[("DELETE", "/token-providers/{service}")] == {"204", "400", "403", "404"}
    assert statuses[("POST", "/machines/{machineName}/bundle")] == {
        "200", "400", "403", "404", "413", "501",
    }  # fmt: skip
    assert statuses[("GET", "/logs")] == {"200", "400", "403"}
    for responses in statuses.values():
        assert "422" not in responses
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])
    refs = _error_refs(document["paths"]["/machines/{machineName}"]["delete"]["responses"])
    assert refs == {"400", "403", "404", "409", "413"}
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/machines"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/uploads/code"]["post"], "the form is the token"
    assert document["paths"]["/tokens"]["post"]["security"] == [], "the subject token is the token"
    state = document["paths"]["/machines/{machineName}/i/{instanceName}"]["get"]["responses"]
    assert state["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/InstanceState")
    chart = document["paths"]["/machines/{machineName}/v/{machineVersionId}/definition"]["get"]
    assert chart["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/VersionDefinition"
    )
    logs = document["paths"]["/logs"]["get"]["responses"]["200"]
    assert logs["content"]["application/json"]["schema"]["$ref"].endswith("/LogsPage")
    assert not [path for path in document["paths"] if path.startswith(("/dashboard", "/healthz"))]
    assert "/rt" not in document["paths"], "a WebSocket: not an HTTP operation"


def _error_refs(responses: dict[str, Any]) -> set[str]:
    return {
        status
        for status, response in responses.items()
        if response.get("content", {}).get("application/json", {}).get("schema")
        == {"$ref": "#/components/schemas/ErrorBody"}
    }


@pytest.mark.slow
def test_a_fuzzer_finds_no_undocumented_status_and_no_server_error(
    server: Server, api: Api, tmp_path: Path
) -> None:
    config = _config(tmp_path, **_fuzz_targets(server, api))
    operations = len(_operations(httpx.get(server.url + "/openapi.json").json()))
    token = mint(server.admin.key_id, server.admin.secret, act={"sub": "fuzzer"})
    command = [
        sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
        "--config-file", str(config), "--no-color",
        "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--seed", str(SEED), "--generation-deterministic",
        "--workers", "1",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert tested is not None and tested[1] == tested[2], done.stdout
    assert int(tested[1]) > EXAMPLES_PER_OPERATION * operations, "fewer cases than ops x examples"
    assert api.ok("GET", "/machines/m")["machine"]["currentVersion"] is not None


def _fuzz_targets(server: Server, api: Api) -> dict[str, list[str]]:
    """Make what the fuzzer's requests can find (a machine and its version, an instance, a key to
    sign with, an identity provider and a token provider with a subject token it accepts); the
    dictionaries `schemathesis.toml` binds to parameters."""
    version_id = api.create_machine("m", COUNTER)
    api.create_instance("m", "i")
    signer = api.ok("POST", "/keys", {"name": "fuzz signer", "scopes": ["state.read"]})["id"]
    mapping = {"sub.$": "$.sub"}
    idp = {"aud": "fuzz", "algs": ["HS256"], "key": _b64url(IDP_SECRET), "mapping": mapping}
    api.ok("POST", "/idps", idp)
    api.ok("POST", "/token-providers", {"service": "fuzz", "keyId": signer, "mapping": mapping})
    claims = {"aud": "fuzz", "sub": "fuzzer", "exp": int(time.time()) + 24 * 3600}
    return {
        "versions": [version_id],
        "signers": [signer],
        "services": ["fuzz"],
        "auds": ["fuzz"],
        "audiences": [
            f"{AUDIENCE_PREFIX}{server.admin.org_id}/{service}"
            for service in ("fuzz", anonymous.SERVICE)
        ],
        "subjects": [jwt.encode(claims, IDP_SECRET, algorithm="HS256")],
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _config(tmp_path: Path, **dictionaries: list[str]) -> Path:
    """`schemathesis.toml` with the dictionaries of what the test made (JSON strings and arrays
    of them are TOML too)."""
    tables = [
        f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n"
        for name, values in dictionaries.items()
    ]
    config = tmp_path / CONFIG.name
    config.write_text(CONFIG.read_text() + "\n" + "\n".join(tables))
    return config


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method, path) for path, ops in document["paths"].items() for method in ops]


def test_unknown_paths_are_404_in_the_error_shape(api: Api) -> None:
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        for path in ("/tokens/x", "/idps/a/b", "/machines/m/i/i/nothing", "/a/b/c/d"):
            assert_error(api.request(method, path), 404, "not-found")
    for path in ("/nothing", "/machine", "/v1/machines", "/machines/m/nothing"):
        assert_error(api.request("GET", path), 404, "not-found")


def test_put_of_one_segment_is_still_an_invitation(api: Api) -> None:
    body = assert_error(api.request("PUT", "/somecode"), 501, "not-implemented")
    assert "API keys" in body["error"]


def test_a_wrong_method_on_a_known_path_is_405_naming_the_allowed_ones(api: Api) -> None:
    for method, path, allowed in [
        ("PUT", "/machines", "GET, POST"),  # one segment: not taken for an invitation code
        ("PATCH", "/machines", "GET, POST"),
        ("PUT", "/keys", "GET, POST"),
        ("GET", "/org-members", "POST"),
        ("POST", "/machines/m/i/i/admin", "GET"),
        ("PUT", "/healthz", "GET"),
    ]:
        response = api.request(method, path)
        assert_error(response, 405, "method-not-allowed")
        assert response.headers["allow"] == allowed, (method, path)
