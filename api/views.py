"""Store rows -> wire bodies (`XPublic` schemas, or plain dicts for machine data)."""

from __future__ import annotations

from typing import Any

from api import ids
from api.schemas import (
    InstanceSummary,
    KeyPublic,
    MachinePublic,
    MachineSummary,
    MachineVersionInfo,
    iso,
)
from runtime.store.models import Instance, Key, Machine, MachineVersion, Transition


def version_info(version: MachineVersion) -> MachineVersionInfo:
    return MachineVersionInfo(
        id=ids.encode("ver", version.id),
        createdAt=iso(version.created_at),
        clientInfo=version.client_info,
    )


def machine_summary(machine: Machine, current: MachineVersion | None) -> MachineSummary:
    return MachineSummary(
        slug=machine.slug,
        createdAt=iso(machine.created_at),
        currentVersion=version_info(current) if current else None,
    )


def machine_public(machine: Machine, current: MachineVersion | None) -> MachinePublic:
    return MachinePublic(
        createdAt=iso(machine.created_at),
        currentVersion=version_info(current) if current else None,
    )


def instance_summary(instance: Instance, version: MachineVersion) -> InstanceSummary:
    return InstanceSummary(
        slug=instance.slug,
        createdAt=iso(instance.created_at),
        status="paused" if instance.status == "paused" else "running",
        machineVersion=version_info(version),
    )


def admin_state(
    instance: Instance, version: MachineVersion, desired: MachineVersion | None = None
) -> dict[str, Any]:
    view = instance.view
    body = {
        "state": view["state"],
        "context": instance.context,
        "status": instance.status,
        "tags": view["tags"],
        "done": view["done"],
        "machineVersion": version_info(version).model_dump(),
        "createdAt": iso(instance.created_at),
    }
    if desired is not None:  # an upgrade is pending until the instance's next settled event
        body["desiredMachineVersion"] = version_info(desired).model_dump()
    return body


def transition(row: Transition) -> dict[str, Any]:
    return {"createdAt": iso(row.created_at), "state": row.state, "event": row.event}


def key_public(key: Key) -> KeyPublic:
    return KeyPublic(
        id=ids.encode("sbk", key.id),
        name=key.name,
        scopes=key.scopes,
        createdAt=iso(key.created_at),
    )
