"""The `backstate` command line.

    backstate serve [--host 127.0.0.1] [--port 8000] [--workers N] [--database-url URL]
    backstate init [--database-url URL] [--json]
    backstate keys create --org ORG --name NAME [--use production|ci|admin] [--json]
    backstate token --key-id ID --secret SECRET [--act JSON] [--expires-in 1h]
    backstate smply-login --api-url URL --key-id ID --secret SECRET [--org ORG]

Every setting can also come from its `BACKSTATE_*` variable; flags win.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from api import bootstrap
from api.settings import Settings
from api.tokens import mint, parse_duration
from runtime.errors import BackstateError

SMPLY_TOKEN_LIFETIME = "365d"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except BackstateError as exc:
        print(f"backstate: {exc.message}", file=sys.stderr)
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backstate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url")
    serve.add_argument(
        "--workers", type=int,
        help="server processes sharing the port (default: BACKSTATE_WORKERS; 0: one per CPU)"
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)

    init = commands.add_parser("init", help="create the schema, a default org and an admin key")
    init.add_argument("--database-url")
    init.add_argument("--json", action="store_true")
    init.set_defaults(run=_init)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(required=True)
    create = keys.add_parser("create", help="create a key in an org")
    create.add_argument("--org", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--use", choices=["production", "ci", "admin"], default="production")
    create.add_argument("--database-url")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=_keys_create)

    token = commands.add_parser("token", help="print a JWT signed with a key")
    token.add_argument("--key-id", required=True)
    token.add_argument("--secret", required=True)
    token.add_argument("--act", help="the end-user auth context, a JSON object")
    token.add_argument("--expires-in", default="1h")
    token.set_defaults(run=_token)

    login = commands.add_parser("smply-login", help="point smply's credentials at a server")
    login.add_argument("--api-url", required=True)
    login.add_argument("--key-id", required=True)
    login.add_argument("--secret", required=True)
    login.add_argument("--org", help="default org (asked from the server when omitted)")
    login.add_argument("--expires-in", default=SMPLY_TOKEN_LIFETIME)
    login.set_defaults(run=_smply_login)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return Settings(**overrides)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from api.app import create_app
    from api.logs import log_config
    from api.metrics import multiprocess_dir
    from api.workers import serve_workers

    settings = _settings(args)
    logging_config = log_config(settings.log_format, args.log_level) or LOGGING_CONFIG
    workers = args.workers if args.workers is not None else settings.workers
    if workers < 0:
        raise SystemExit("backstate: --workers must be at least 1 (or 0: one per CPU)")
    workers = workers or _cpus()
    if workers == 1:
        app = create_app(settings)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                    log_config=logging_config)
        return 0
    # Migrate and make the server secret here, once, rather than in a race between workers;
    # each worker then builds its app from the environment (flags passed on as variables).
    db = bootstrap.open_database(settings)
    try:
        bootstrap.server_secret(settings, db)
    finally:
        db.dispose()
    if args.database_url:
        os.environ["BACKSTATE_DATABASE_URL"] = args.database_url
    # Connections dealt to the workers in turn, not uvicorn's shared socket: see api/workers.py.
    # Their metrics add up through files in a folder of their own (api/metrics.py).
    with multiprocess_dir():
        return serve_workers(workers, args.host, args.port, args.log_level,
                             pin=settings.pin_workers, log_config=logging_config)


def _cpus() -> int:
    """The CPUs this process may use (its affinity, as containers restrict it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not on Linux
        return os.cpu_count() or 1


def _init(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = bootstrap.open_database(settings)
    try:
        made = bootstrap.init(settings, db)
    finally:
        db.dispose()
    api_url = settings.public_url or "http://127.0.0.1:8000"
    if args.json:
        _print_json(
            {"orgId": made.org_id, "keyId": made.key_id, "secret": made.secret, "apiUrl": api_url}
        )
    else:
        state = "created" if made.created else "existing"
        print(f"org:    {made.org_id}\nkey:    {made.key_id} ({state} admin key)")
        print(f"secret: {made.secret}\napi:    {api_url}")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = bootstrap.open_database(settings)
    try:
        key_id, secret = bootstrap.create_key(settings, db, args.org, args.name, args.use)
    finally:
        db.dispose()
    if args.json:
        _print_json({"keyId": key_id, "secret": secret})
    else:
        print(f"key:    {key_id}\nsecret: {secret}  (shown once)")
    return 0


def _token(args: argparse.Namespace) -> int:
    act = _parse_act(args.act)
    print(mint(args.key_id, args.secret, act=act, expires_in_s=parse_duration(args.expires_in)))
    return 0


def _smply_login(args: argparse.Namespace) -> int:
    """Write `~/.smply/credentials` as smply expects a Supabase session (it reads the
    session's `access_token`, `refresh_token`, `expires_at` and `user`, and would try to
    refresh one about to expire against supabase.co), with a long-lived token signed by the
    key as the access token."""
    token = mint(args.key_id, args.secret, expires_in_s=parse_duration(args.expires_in))
    home = Path(os.environ.get("HOME", "."))
    directory = home / ".smply"
    directory.mkdir(mode=0o700, exist_ok=True)
    credentials = directory / "credentials"
    credentials.write_text(json.dumps(_session(token)))
    credentials.chmod(0o600)
    org = args.org or _ask_org(args.api_url, token)
    if org:
        (directory / "default-org").write_text(org)  # no newline: smply sends it verbatim
    print(f"wrote {credentials}" + (f" (default org {org})" if org else ""))
    return 0


def _session(token: str) -> dict[str, Any]:
    return {
        "access_token": token,
        "refresh_token": "unused",
        "token_type": "bearer",
        "expires_in": 3600,
        "expires_at": 9_999_999_999,  # far future: gotrue must never try to refresh
        "user": {
            "id": "00000000-0000-0000-0000-000000000001",
            "aud": "authenticated",
            "role": "authenticated",
            "email": "admin@backstate.local",
            "app_metadata": {},
            "user_metadata": {},
            "created_at": "2023-01-01T00:00:00Z",
        },
    }


def _ask_org(api_url: str, token: str) -> str | None:
    try:
        response = httpx.get(
            api_url.rstrip("/") + "/orgs",
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        response.raise_for_status()
        orgs = response.json()["orgs"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        print(
            f"backstate: could not ask {api_url} for the org ({exc}); "
            "pass --org to set smply's default org",
            file=sys.stderr,
        )
        return None
    return str(orgs[0]["id"]) if orgs else None


def _parse_act(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        act = json.loads(raw)
    except ValueError:
        act = None
    if not isinstance(act, dict):
        raise SystemExit('backstate: --act must be a JSON object, e.g. \'{"sub": "user-1"}\'')
    return act


def _print_json(value: dict[str, Any]) -> None:
    print(json.dumps(value))


if __name__ == "__main__":
    raise SystemExit(main())
