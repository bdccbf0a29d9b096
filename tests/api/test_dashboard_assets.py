"""The dashboard's assets and its feature list, served by the API's own process
(api/dashboard.py); the pages themselves are tested in a browser (tests/dashboard)."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from api import dashboard
from api.app import create_app
from api.settings import Settings
from runtime.engine import Runtime
from tests.conftest import Server
from tests.support.server import run_server


def test_the_built_dashboard_is_served_with_a_strict_policy(server: Server) -> None:
    assert (dashboard.DIST / "index.html").is_file(), "run `make setup`: it builds the dashboard"
    page = httpx.get(server.url + "/dashboard/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assets = [("app.js", "javascript"), ("styles.css", "css"), ("elk-worker.min.js", "javascript")]
    for asset, kind in assets:
        got = httpx.get(f"{server.url}/dashboard/{asset}")
        assert got.status_code == 200 and kind in got.headers["content-type"], asset
    assert httpx.get(server.url + "/dashboard/nope.js").status_code == 404


def test_dashboard_without_a_slash_redirects_to_it(server: Server) -> None:
    response = httpx.get(server.url + "/dashboard")
    assert response.status_code == 307
    assert response.headers["location"] == "dashboard/"
    followed = httpx.get(server.url + "/dashboard", follow_redirects=True)
    assert followed.url.path == "/dashboard/" and followed.status_code == 200


def test_the_feature_list_reads_the_servers_own_routes(tmp_path: Path,
                                                       shared_runtime: Runtime) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    bare = FastAPI()   # the dashboard alone, on an app without the optional routes
    dashboard.mount(bare, settings)
    # one that takes other methods and protocols on those paths has none of them
    bare.add_api_route("/logs", _nothing, methods=["POST"])
    bare.add_api_route("/rt", _nothing, methods=["GET"])
    bare.add_api_route("/{anything}", _nothing, methods=["PUT"])
    with run_server(bare) as url:
        features = httpx.get(url + "/dashboard/config.json").json()["features"]
    assert features == {"realtime": False, "logs": False, "desiredVersion": False}

    # the server's routes are in included routers (their own routes since FastAPI 0.165)
    with run_server(create_app(settings, runtime=shared_runtime)) as url:
        features = httpx.get(url + "/dashboard/config.json").json()["features"]
    assert features == {"realtime": True, "logs": True, "desiredVersion": True}


async def _nothing() -> dict[str, str]:
    return {}


def test_a_server_whose_dashboard_was_never_built_says_how_to_build_it(
    tmp_path: Path, shared_runtime: Runtime
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        dashboard_dir=str(tmp_path / "empty"))
    with run_server(create_app(settings, runtime=shared_runtime)) as url:
        response = httpx.get(url + "/dashboard/")
        assert response.status_code == 501
        assert "make setup" in response.text
        assert httpx.get(url + "/healthz").status_code == 200



def test_uploads_to_the_public_url_are_allowed_by_the_policy(
    tmp_path: Path, shared_runtime: Runtime
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        public_url="https://backstate.example.com/base")
    with run_server(create_app(settings, runtime=shared_runtime)) as url:
        policy = httpx.get(url + "/dashboard/").headers["content-security-policy"]
    assert "connect-src 'self' https://backstate.example.com;" in policy
