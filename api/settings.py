"""The server's settings: one object, read from `BACKSTATE_*` variables by the CLI or a test,
then passed down. Nothing reads the environment at import time."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

STATEBACKED_AUDIENCE = "https://api.statebacked.dev/"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKSTATE_", extra="ignore")

    database_url: str = "sqlite:///./backstate.db"
    # "sync": an answered request's commits are synced to disk first (SQLite synchronous=FULL,
    # PostgreSQL synchronous_commit=on). "relaxed": they may still be in the operating
    # system's (or PostgreSQL's) buffers: a power loss or OS crash (or, on PostgreSQL, a crash
    # of its server) can lose the last ones; a crash of backstate itself loses nothing.
    durability: Literal["sync", "relaxed"] = "sync"
    # Signs upload tokens and signed ids, and (through HKDF) encrypts key secrets at rest.
    # Unset: a random one is generated on first start and kept in the database (`server_meta`),
    # which is convenient but means a copy of the database alone can open the key secrets.
    secret: SecretStr | None = None
    # Absolute URL clients reach this server at (used for `codeUploadUrl`). Unset: derived from
    # each request's own base URL.
    public_url: str | None = None
    billing_url: str = "https://github.com/backstate/backstate"

    max_body_bytes: int = 1_000_000
    max_upload_body_bytes: int = 10_500_000
    # `POST /machines/{m}/migrations`: the client puts the whole code in its JSON body as well
    # (a 1 MB gzip bundle as an object of byte values is some 13 MB of JSON).
    max_migration_body_bytes: int = 20_000_000
    max_bundle_gzip_bytes: int = 1_000_000
    max_bundle_bytes: int = 10_000_000
    max_event_bytes: int = 400_000
    upload_token_ttl_s: int = 3600

    token_leeway_s: int = 10
    # How long a process keeps an API key it has read (0: read it on every request). A key
    # deleted through another process keeps working there for up to this long.
    key_cache_s: float = 5.0
    accepted_audiences: list[str] = [STATEBACKED_AUDIENCE]

    # Token exchange (POST /tokens, api/identity/): how long a minted token lives (at most as
    # long as the subject token), and the largest form body it takes.
    exchange_token_ttl_s: int = 3600
    max_token_request_bytes: int = 65_536
    # Identity providers' JWKS (api/identity/jwks.py), fetched over HTTPS only: a PEM file of
    # extra CAs to trust (an issuer behind a private CA; the tests' local issuer), how long
    # fetched keys are kept, and the least time between two fetches of one URL (an unknown
    # `kid` fetches again no sooner: a flood of made-up kids cannot hammer the issuer).
    jwks_ca_file: str | None = None
    jwks_cache_s: float = 300.0
    jwks_refresh_min_s: float = 10.0
    jwks_timeout_s: float = 5.0
    jwks_max_bytes: int = 512_000

    # Runtime limits, handed to `runtime.engine.RuntimeLimits`.
    window_s: float = 90.0
    slice_s: float = 10.0   # longest synchronous run of a machine's JavaScript
    memory_bytes: int = 128 * 1024 * 1024
    # Machines' fetch egress (runtime/sandbox/fetch.py): by default no loopback, private or
    # link-local destinations. An allow-list, when set, is the only destinations permitted.
    fetch_allow_loopback: bool = False
    fetch_allow_private: bool = False
    fetch_allowed_hosts: list[str] = []
    fetch_timeout_s: float = 30.0
    step_threads: int = 64
    # Steps starting at once in one process (0: one per CPU); a step still running after 50 ms
    # no longer counts (see runtime/instances/lanes.py).
    step_lanes: int = 0
    # Machine versions each process keeps compiled (a snapshot and a few VMs each).
    cached_versions: int = 64
    # VMs stay warm between steps and keep instances' interpreters live (runtime/pool.py):
    # module globals persist across the events of a machine version, as in an isolate.
    # False: every step in a VM reset to its version's snapshot (strict isolation, slower).
    warm_vms: bool = True

    # Per-instance serialization across processes (see runtime/store/leases.py).
    lease_ttl_s: float = 30.0
    lease_wait_s: float = 150.0

    # Durable timers (runtime/scheduler.py): how often the database is polled for timers armed
    # by other processes (this process's own wake it at once), how long a claim keeps other
    # processes away (also how soon a crashed process's claimed timers are delivered by
    # another), and the retry policy for deliveries that fail.
    timers_enabled: bool = True
    timer_poll_s: float = 1.0
    timer_claim_s: float = 15.0
    timer_attempts: int = 5
    timer_retry_s: float = 30.0
    timer_concurrency: int = 32

    # Real time (`/rt`, runtime/realtime): a token that expired while a page stayed open is
    # still accepted on reconnect for `rt_token_grace_s` (the official client builds its socket
    # URL once, with the token it had then, and reconnects with it forever); a connection that
    # sends nothing for `rt_idle_s` is closed (the client pings every 5 minutes); per
    # connection at most `rt_max_subscriptions` instances and frames of `rt_max_frame_bytes`;
    # a subscriber more than `rt_queue` states behind on an instance gets only the latest.
    rt_token_grace_s: float = 24 * 3600
    rt_idle_s: float = 600.0
    rt_max_subscriptions: int = 100
    rt_max_frame_bytes: int = 64 * 1024
    rt_queue: int = 64
    # SQLite: how often each process with subscribers looks for other processes' commits.
    rt_poll_s: float = 0.005
    # How long committed states stay in the change log other processes read them from.
    rt_change_log_s: float = 30.0

    # Machine logs (`GET /logs`, runtime/logs): kept `log_retention_s` and at most
    # `log_max_rows_per_org` entries per org (pruned every `log_prune_s`); stored by a writer
    # every `log_flush_s` from a buffer of `log_buffer_bytes` (a burst beyond it is dropped and
    # counted); `/logs` shows entries once they are `log_settle_s` old, so a `watch` never
    # passes an entry that is still on its way to the table.
    log_retention_s: float = 7 * 24 * 3600
    log_max_rows_per_org: int = 100_000
    log_prune_s: float = 60.0
    log_flush_s: float = 0.2
    log_buffer_bytes: int = 16 << 20
    log_settle_s: float = 2.0

    # The esbuild binary that bundles single-file machines (POST /machines/{m}/bundle).
    # Unset: the one npm installed in js_shims/node_modules for this platform.
    esbuild_path: str | None = None
    # The dashboard's built assets (served at /dashboard/). Unset: dashboard/dist.
    dashboard_dir: str | None = None

    # Operations (api/logs.py, api/metrics.py). "json": one JSON object per log line, with
    # the request id and the instance where known. A token `/metrics` then requires as
    # `Authorization: Bearer <token>` (unset: open; the metrics name no org, machine or
    # instance, but say how busy the server is: keep it unset only where the port is private).
    log_format: Literal["text", "json"] = "text"
    metrics_token: SecretStr | None = None

    page_size: int = 100
    db_pool_size: int = 10
    # `backstate serve` processes sharing the port (0: one per CPU the process may use); steps
    # stay serialized across them by the instance leases. More than one lets a server use more
    # than one core (one GIL each).
    workers: int = 0
    # With workers dividing evenly among the CPUs, each worker stays on one (api/workers.py).
    pin_workers: bool = True
