"""The `backstate` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from api.cli import main
from tests.conftest import TEST_SECRET, Server
from tests.support.client import Api, assert_error
from tests.support.server import REPO


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKSTATE_SECRET", TEST_SECRET)


def test_init_is_idempotent(
    capsys: pytest.CaptureFixture[str], database_url: str, secret_env: None
) -> None:
    first = json.loads(run(capsys, "init", "--database-url", database_url, "--json"))
    assert set(first) == {"orgId", "keyId", "secret", "apiUrl"}
    assert first["orgId"].startswith("org_") and first["keyId"].startswith("sbk_")
    assert first["secret"].startswith("sbsec_")
    again = json.loads(run(capsys, "init", "--database-url", database_url, "--json"))
    assert again == first
    text = run(capsys, "init", "--database-url", database_url)
    assert first["keyId"] in text and "existing" in text


def test_keys_create_makes_a_working_key(
    capsys: pytest.CaptureFixture[str], server: Server, secret_env: None
) -> None:
    url = server.settings.database_url
    made = json.loads(
        run(
            capsys,
            "keys",
            "create",
            "--org",
            server.admin.org_id,
            "--name",
            "ci",
            "--use",
            "ci",
            "--database-url",
            url,
            "--json",
        )
    )
    assert set(made) == {"keyId", "secret"}
    with Api.for_key(server.url, made["keyId"], made["secret"]) as ci:
        assert ci.request("GET", "/machines").status_code == 200
        assert_error(ci.request("GET", "/keys"), 403, "missing-scope")
    assert main(["keys", "create", "--org", "org_nope", "--name", "x", "--database-url", url]) == 1


def test_token_is_accepted_by_the_server(
    capsys: pytest.CaptureFixture[str], server: Server
) -> None:
    token = run(
        capsys,
        "token",
        "--key-id",
        server.admin.key_id,
        "--secret",
        server.admin.secret,
        "--act",
        '{"sub": "u1"}',
        "--expires-in",
        "10m",
    ).strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["act"] == {"sub": "u1"} and claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token) == {
        "alg": "HS256",
        "kid": server.admin.key_id,
        "typ": "JWT",
    }
    with Api(server.url, token) as api:
        assert api.request("GET", "/machines").status_code == 200
    with pytest.raises(SystemExit):
        main(["token", "--key-id", "k", "--secret", "s", "--act", "[1]"])


def test_smply_login_writes_credentials_smply_accepts(
    capsys: pytest.CaptureFixture[str],
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    run(
        capsys,
        "smply-login",
        "--api-url",
        server.url,
        "--key-id",
        server.admin.key_id,
        "--secret",
        server.admin.secret,
    )
    directory = tmp_path / ".smply"
    assert directory.stat().st_mode & 0o777 == 0o700
    credentials = json.loads((directory / "credentials").read_text())
    assert (directory / "credentials").stat().st_mode & 0o777 == 0o600
    assert {"access_token", "refresh_token", "expires_at", "user"} <= set(credentials)
    assert credentials["expires_at"] > 2_000_000_000
    assert (directory / "default-org").read_text() == server.admin.org_id  # no newline
    headers = {"x-statebacked-org-id": server.admin.org_id}
    with Api(server.url, credentials["access_token"], **headers) as smply:
        assert smply.request("GET", "/machines").status_code == 200


def test_the_module_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ["serve", "init", "keys", "token", "smply-login"]:
        assert command in result.stdout
