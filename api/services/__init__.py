"""The server's services, built once per app by `build_services` and reached by routes
through `api.deps`. Routes stay thin: parse, call one of these, map the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.auth import Authenticator
from api.crypto import ServerKeys
from api.identity.anonymous import AnonymousKeys
from api.identity.exchange import TokenExchange
from api.identity.jwks import JwksCache, JwksFetcher
from api.identity.providers import IdentityProviders, TokenProviders
from api.key_cache import KeyCache
from api.services import migrations, versions
from api.services.builder import Builder
from api.services.extensions import ExtensionService
from api.services.instances import InstanceService
from api.services.keys import KeyService
from api.services.logs import LogService
from api.services.machines import MachineService
from api.services.migrations import MigrationService
from api.services.orgs import OrgService
from api.services.realtime import RealtimeService
from api.services.uploads import CodeUploads, Limits
from api.services.versions import VersionService
from api.settings import Settings
from runtime.clock import Clock
from runtime.engine import Runtime
from runtime.instances import Instances, InstancesConfig
from runtime.logs import LogWriter, Retention, StepLogs
from runtime.store import Database
from runtime.store import version_migrations as migration_store
from runtime.store import versions as version_store


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    auth: Authenticator
    machines: MachineService
    versions: VersionService
    migrations: MigrationService
    uploads: CodeUploads
    instances: InstanceService
    keys: KeyService
    orgs: OrgService
    realtime: RealtimeService
    logs: LogService
    core: Instances  # the instance pipeline (runtime/instances) the services above call
    idps: IdentityProviders
    token_providers: TokenProviders
    tokens: TokenExchange
    extensions: ExtensionService
    builder: Builder


def build_services(
    settings: Settings, db: Database, secret: str, runtime: Runtime, clock: Clock
) -> Services:
    server_keys = ServerKeys(secret)
    key_cache = KeyCache(settings.key_cache_s)
    page = settings.page_size
    writer = LogWriter(
        db, clock, buffer_bytes=settings.log_buffer_bytes, flush_s=settings.log_flush_s,
        retention=Retention(max_age_s=settings.log_retention_s,
                            max_rows_per_org=settings.log_max_rows_per_org,
                            prune_s=settings.log_prune_s),
    )  # fmt: skip
    core = Instances(db, runtime, clock, instances_config(settings),
                     logs=StepLogs(writer, clock))
    limits = Limits(
        gzip_bytes=settings.max_bundle_gzip_bytes,
        raw_bytes=settings.max_bundle_bytes,
        upload_ttl_s=settings.upload_token_ttl_s,
    )
    uploads = CodeUploads(db, clock, server_keys, limits=limits, stores={
        versions.UPLOAD_KIND: version_store.store_bundle,
        migrations.UPLOAD_KIND: migration_store.store_bundle,
    })
    auth = Authenticator(db, server_keys, settings, key_cache)
    keys = KeyService(db, server_keys, clock, key_cache, page_size=page)
    idps = IdentityProviders(db, server_keys, clock, page_size=page)
    token_providers = TokenProviders(db, clock, page_size=page)
    return Services(
        settings=settings,
        db=db,
        auth=auth,
        machines=MachineService(db, clock, page_size=page),
        versions=VersionService(db, clock, server_keys, runtime, uploads=uploads,
                                page_size=page),
        migrations=MigrationService(db, clock, server_keys, runtime, uploads=uploads),
        uploads=uploads,
        instances=InstanceService(db, core, page_size=page),
        keys=keys,
        orgs=OrgService(db, clock, auth),
        idps=idps,
        token_providers=token_providers,
        tokens=build_exchange(settings, db, clock, auth, keys, idps, token_providers),
        realtime=RealtimeService(settings, db, core, auth),
        logs=LogService(db, clock, writer, settle_s=settings.log_settle_s),
        core=core,
        extensions=ExtensionService(db, runtime),
        builder=Builder(Path(settings.esbuild_path) if settings.esbuild_path else None),
    )


def instances_config(settings: Settings) -> InstancesConfig:
    return InstancesConfig(
        step_threads=settings.step_threads,
        step_lanes=settings.step_lanes,
        lease_ttl_s=settings.lease_ttl_s,
        lease_wait_s=settings.lease_wait_s,
        cached_versions=settings.cached_versions,
        timer_poll_s=settings.timer_poll_s,
        timer_claim_s=settings.timer_claim_s,
        timer_attempts=settings.timer_attempts,
        timer_retry_s=settings.timer_retry_s,
        timer_concurrency=settings.timer_concurrency,
    )


def build_exchange(
    settings: Settings,
    db: Database,
    clock: Clock,
    auth: Authenticator,
    keys: KeyService,
    idps: IdentityProviders,
    token_providers: TokenProviders,
) -> TokenExchange:
    fetcher = JwksFetcher(
        timeout_s=settings.jwks_timeout_s,
        max_bytes=settings.jwks_max_bytes,
        ca_file=settings.jwks_ca_file,
    )
    jwks = JwksCache(
        fetcher, max_age_s=settings.jwks_cache_s, min_refresh_s=settings.jwks_refresh_min_s
    )
    return TokenExchange(
        auth=auth,
        idps=idps,
        token_providers=token_providers,
        anonymous_keys=AnonymousKeys(db, keys),
        jwks=jwks,
        clock=clock,
        ttl_s=settings.exchange_token_ttl_s,
        leeway_s=settings.token_leeway_s,
    )
