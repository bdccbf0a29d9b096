"""The server's services, built once per app by `build_services` and reached by routes
through `api.deps`. Routes stay thin: parse, call one of these, map the result."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import Authenticator
from api.crypto import ServerKeys
from api.key_cache import KeyCache
from api.services.instances import InstanceService
from api.services.keys import KeyService
from api.services.logs import LogService
from api.services.machines import MachineService
from api.services.orgs import OrgService
from api.services.realtime import RealtimeService
from api.services.versions import Limits, VersionService
from api.settings import Settings
from runtime.clock import Clock
from runtime.engine import Runtime
from runtime.instances import Instances, InstancesConfig
from runtime.logs import LogWriter, Retention, StepLogs
from runtime.store import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    auth: Authenticator
    machines: MachineService
    versions: VersionService
    instances: InstanceService
    keys: KeyService
    orgs: OrgService
    realtime: RealtimeService
    logs: LogService
    core: Instances  # the instance pipeline (runtime/instances) the services above call


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
    auth = Authenticator(db, server_keys, settings, key_cache)
    limits = Limits(
        gzip_bytes=settings.max_bundle_gzip_bytes,
        raw_bytes=settings.max_bundle_bytes,
        upload_ttl_s=settings.upload_token_ttl_s,
    )
    return Services(
        settings=settings,
        db=db,
        auth=auth,
        machines=MachineService(db, clock, page_size=page),
        versions=VersionService(db, clock, server_keys, runtime, limits=limits, page_size=page),
        instances=InstanceService(db, core, page_size=page),
        keys=KeyService(db, server_keys, clock, key_cache, page_size=page),
        orgs=OrgService(db, clock),
        realtime=RealtimeService(settings, db, core, auth),
        logs=LogService(db, clock, writer, settle_s=settings.log_settle_s),
        core=core,
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
