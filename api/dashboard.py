"""The dashboard, served by the API's own process at `/dashboard/`.

Its source is `dashboard/` (plain JavaScript, elkjs for the chart's layout), built by `make
setup` with the esbuild pinned by its lockfile into `dashboard/dist/`, which is what is served
here. It is a static page that talks to this same server through the public API (and the
endpoints of `api/routes/extensions.py`), so it works offline and needs no second server.

`/dashboard/config.json` tells the page which optional parts of the API this server has (the
`/rt` WebSocket, `/logs`, desired versions), read from the app's own routes: a feature the
server gains is used by the page without a new build, and one it lacks is shown as missing
instead of failing request after request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from api.settings import Settings

DIST = Path(__file__).resolve().parents[1] / "dashboard" / "dist"


def security_headers(public_url: str | None) -> dict[str, str]:
    """The page signs its own tokens with the key's secret: nothing but its own scripts may
    run in it, and it talks only to this server (and to its public URL, where uploads go)."""
    connect = "'self'"
    if public_url:
        parts = urlsplit(public_url)
        connect += f" {parts.scheme}://{parts.netloc}"
    return {
        "content-security-policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; worker-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'"
        ),
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "cache-control": "no-cache",
    }


def mount(app: FastAPI, settings: Settings) -> None:
    directory = Path(settings.dashboard_dir) if settings.dashboard_dir else DIST
    app.add_api_route("/dashboard", _to_index, methods=["GET"], include_in_schema=False)
    app.add_api_route("/dashboard/config.json", _config, methods=["GET"], include_in_schema=False)
    if (directory / "index.html").is_file():
        assets = _Assets(security_headers(settings.public_url), directory=directory, html=True)
        app.mount("/dashboard", assets, name="dashboard")
    else:
        missing = _NotBuilt(directory)
        app.add_api_route(
            "/dashboard/{path:path}", missing, methods=["GET"], include_in_schema=False
        )


async def _to_index() -> RedirectResponse:
    # Relative, so the redirect also holds behind a proxy that serves us under a prefix.
    return RedirectResponse("dashboard/", status_code=307)


async def _config(request: Request) -> JSONResponse:
    routes = request.app.routes
    features = {
        "realtime": _has(routes, "/rt", "websocket"),
        "logs": _has(routes, "/logs", "GET"),
        "desiredVersion": _has(routes, "/machines/m/i/i/v", "PUT"),
    }
    return JSONResponse({"features": features}, headers={"cache-control": "no-store"})


def _has(routes: list[BaseRoute], path: str, method: str) -> bool:
    """Whether a route of the app takes `method` (or "websocket") on `path`, asked as the
    router asks: each route matches a request or not. (Included routers are routes of their
    own in FastAPI 0.165, so their routes are not in `app.routes`.)"""
    if method == "websocket":
        scope: dict[str, Any] = {"type": "websocket", "path": path, "root_path": ""}
    else:
        scope = {"type": "http", "path": path, "root_path": "", "method": method}
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


class _Assets(StaticFiles):
    def __init__(self, headers: dict[str, str], **kw: Any):
        super().__init__(**kw)
        self._headers = [(k.encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers += self._headers
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, with_headers)  # type: ignore[arg-type]


class _NotBuilt:
    """Served instead of the dashboard when its assets were never built: say how to build
    them rather than answering 404."""

    def __init__(self, directory: Path):
        self.directory = directory

    async def __call__(self, path: str) -> Response:
        return HTMLResponse(
            "<!doctype html><title>backstate dashboard</title><h1>The dashboard is not built"
            f"</h1><p>No <code>index.html</code> in <code>{self.directory}</code>. Run "
            "<code>make setup</code> (it builds <code>dashboard/</code> with npm), or set "
            "BACKSTATE_DASHBOARD_DIR.</p>",
            status_code=501,
        )
