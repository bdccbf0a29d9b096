"""The server's services, built once per app by `build_services` and reached by routes
through `api.deps`. Routes stay thin: parse, call one of these, map the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.auth import Authenticator
from api.crypto import ServerKeys
from api.key_cache import KeyCache
from api.services.builder import Builder
from api.services.bundles import Bundles
from api.services.extensions import ExtensionService
from api.services.instances import InstanceService
from api.services.keys import KeyService
from api.services.machines import MachineService
from api.services.orgs import OrgService
from api.services.runtime_port import StepRuntime
from api.services.stepping import Stepper
from api.services.timers import build_scheduler
from api.services.versions import Limits, VersionService
from api.settings import Settings
from runtime.clock import Clock
from runtime.scheduler import Scheduler
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
    scheduler: Scheduler
    stepper: Stepper
    extensions: ExtensionService
    builder: Builder


def build_services(
    settings: Settings, db: Database, secret: str, runtime: StepRuntime, clock: Clock
) -> Services:
    server_keys = ServerKeys(secret)
    key_cache = KeyCache(settings.key_cache_s)
    page = settings.page_size
    stepper = Stepper(
        db,
        clock,
        step_threads=settings.step_threads,
        step_lanes=settings.step_lanes,
        lease_ttl_s=settings.lease_ttl_s,
        lease_wait_s=settings.lease_wait_s,
    )
    limits = Limits(
        gzip_bytes=settings.max_bundle_gzip_bytes,
        raw_bytes=settings.max_bundle_bytes,
        upload_ttl_s=settings.upload_token_ttl_s,
    )
    instances = InstanceService(
        db,
        clock,
        runtime,
        stepper=stepper,
        bundles=Bundles(db, runtime),
        max_event_bytes=settings.max_event_bytes,
        page_size=page,
    )
    return Services(
        settings=settings,
        db=db,
        auth=Authenticator(db, server_keys, settings, key_cache),
        machines=MachineService(db, clock, page_size=page),
        versions=VersionService(db, clock, server_keys, runtime, limits=limits, page_size=page),
        instances=instances,
        keys=KeyService(db, server_keys, clock, key_cache, page_size=page),
        orgs=OrgService(db, clock),
        scheduler=build_scheduler(settings, db, clock, stepper, instances),
        stepper=stepper,
        extensions=ExtensionService(db, runtime),
        builder=Builder(Path(settings.esbuild_path) if settings.esbuild_path else None),
    )
