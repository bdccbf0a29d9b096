"""The OpenAPI document says what the server does: schemathesis fuzzes a real server from it.

Every status an operation answers must be documented, every response must match its documented
schema, and nothing may answer 5xx but the deliberately unsupported member routes (501);
`schemathesis.toml` beside this file says which checks are adjusted and why.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.tokens import mint
from tests.conftest import Server
from tests.support.bundles import COUNTER
from tests.support.client import Api, assert_error

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = 25
SEED = 13
FUZZ_TIMEOUT_S = 300


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
    assert not [path for path in document["paths"] if path.startswith(("/dashboard", "/healthz"))]


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
    api.create_machine("m", COUNTER)
    api.create_instance("m", "i")
    token = mint(server.admin.key_id, server.admin.secret, act={"sub": "fuzzer"})
    command = [
        sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
        "--config-file", str(CONFIG), "--no-color",
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
    assert int(tested[1]) > EXAMPLES_PER_OPERATION * 24, "fewer cases than operations x examples"
    assert api.ok("GET", "/machines/m")["machine"]["currentVersion"] is not None


def test_unknown_paths_are_404_in_the_error_shape(api: Api) -> None:
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        for path in ("/logs", "/tokens/x", "/idps/a/b", "/machines/m/i/i/nothing", "/a/b/c/d"):
            if (method, path) == ("PUT", "/logs"):
                continue  # one segment: an invitation code (below)
            assert_error(api.request(method, path), 404, "not-found")
    for path in ("/logs", "/tokens", "/idps", "/token-providers", "/rt", "/dashboard"):
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
