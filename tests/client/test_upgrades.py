"""Migrations and desired versions (contract §1 #12, #17-18), against the real server, both
clients. The server answers these routes with 404 until issue #17; the tests are written as
they must pass then (strict: the day they pass the marks must go)."""

from __future__ import annotations

from typing import Any

import pytest
from backstate_client import NoMigrationPathError

from tests.client.bundles import PLAYER, PLAYER_MIGRATION, PLAYER_V2
from tests.client.test_machines import all_pages


@pytest.fixture
def versions(client: Any) -> tuple[str, str]:
    client.machines.create("player")
    v1 = client.machine_versions.create("player", PLAYER, make_current=True)
    v2 = client.machine_versions.create("player", PLAYER_V2)
    return v1["machineVersionId"], v2["machineVersionId"]


def test_no_migration_path(client: Any, versions: tuple[str, str]) -> None:
    _, v2 = versions
    client.machine_instances.create("player", "p")
    with pytest.raises(NoMigrationPathError) as refused:
        client.machine_instances.admin.update_desired_version("player", "p", v2)
    assert refused.value.status == 400 and refused.value.code == "no-migration-path"
    assert "desiredMachineVersion" not in client.machine_instances.admin.get("player", "p")


def test_an_instance_moves_to_its_desired_version_at_its_next_event(
    client: Any, versions: tuple[str, str]
) -> None:
    v1, v2 = versions
    client.machine_instances.create("player", "p")
    migration = client.machine_version_migrations.create("player", v1, v2, PLAYER_MIGRATION)
    assert migration["machineVersionMigrationId"]
    assert client.machine_instances.admin.update_desired_version("player", "p", v2) is None
    admin = client.machine_instances.admin.get("player", "p")
    assert admin["machineVersion"]["id"] == v1 and admin["desiredMachineVersion"]["id"] == v2
    assert client.machine_instances.send_event("player", "p", "play")["state"] == {
        "playing": "normal"
    }
    admin = client.machine_instances.admin.get("player", "p")
    assert admin["machineVersion"]["id"] == v2 and "desiredMachineVersion" not in admin
    list_transitions = client.machine_instances.list_transitions
    events = [t["event"] for t in all_pages(list_transitions, "player", "p", key="transitions")]
    assert any(e["type"] == "statebacked.upgrade" for e in events if isinstance(e, dict))


def test_migrations_in_three_steps(client: Any, versions: tuple[str, str]) -> None:
    v1, v2 = versions
    made = client.machine_version_migrations.provisionally_create("player", v2, v1)
    assert set(made) == {"machineVersionMigrationId", "codeUploadUrl", "codeUploadFields"}
