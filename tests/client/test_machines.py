"""Machines and their versions through the Python client, against a real server."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest
from backstate_client import ApiError, ClientError, ConflictError, NotFoundError
from backstate_client._machines import upload_code

from tests.client.bundles import BROKEN, PLAYER, PLAYER_V2
from tests.client.conftest import run_flow


def all_pages(list_page: Any, *args: Any, key: str) -> list[Any]:
    """Follow `cursor` to the end: every item of a paginated list."""
    items: list[Any] = []
    cursor = None
    while True:
        page = list_page(*args, cursor=cursor)
        items += page[key]
        cursor = page.get("cursor")
        if cursor is None:
            return items


def test_machines_create_list_get(client: Any) -> None:
    for name in ["m1", "m2", "m3"]:
        assert client.machines.create(name) is None
    first = client.machines.list()
    assert [m["slug"] for m in first["machines"]] == ["m1", "m2"] and "cursor" in first
    assert [m["slug"] for m in all_pages(client.machines.list, key="machines")] == [
        "m1", "m2", "m3",
    ]  # fmt: skip
    detail = client.machines.get("m2")["machine"]
    assert "currentVersion" not in detail and detail["createdAt"]


def test_machine_errors(client: Any) -> None:
    client.machines.create("taken")
    with pytest.raises(ConflictError) as conflict:
        client.machines.create("taken")
    assert conflict.value.status == 409
    with pytest.raises(ClientError) as invalid:
        client.machines.create("not a valid name!")
    assert invalid.value.status == 400 and invalid.value.code == "invalid-parameter"
    assert invalid.value.parameter == "slug"
    with pytest.raises(NotFoundError):
        client.machines.get("nope")
    with pytest.raises(NotFoundError):
        client.machines.get("a/../../keys")  # percent-encoded: one segment, not another route


def test_delete_machine_with_its_confirmation(client: Any) -> None:
    client.machines.create("doomed")
    version = client.machine_versions.create("doomed", PLAYER, make_current=True)
    client.machine_instances.create("doomed", "i1")
    with pytest.raises(ConflictError) as busy:  # it still has an instance
        client.machines.dangerously.delete("doomed", danger_data_will_be_deleted_forever=True)
    assert busy.value.code == "invalid-state"
    client.machine_instances.dangerously.delete(
        "doomed", "i1", danger_data_will_be_deleted_forever=True
    )
    client.machines.dangerously.delete("doomed", danger_data_will_be_deleted_forever=True)
    with pytest.raises(NotFoundError):
        client.machines.get("doomed")
    with pytest.raises(NotFoundError):
        version_id = version["machineVersionId"]
        client.machine_instances.create("doomed", "i2", machine_version_id=version_id)


def test_create_version_from_code_gzipped_and_plain(client: Any) -> None:
    client.machines.create("player")
    v1 = client.machine_versions.create("player", PLAYER, client_info="1.0.0", make_current=True)
    assert v1["machineVersionId"].startswith("ver_")
    current = client.machines.get("player")["machine"]["currentVersion"]
    assert current["id"] == v1["machineVersionId"] and current["clientInfo"] == "1.0.0"
    # Not current: new instances stay on v1.
    v2 = client.machine_versions.create("player", PLAYER_V2, gzip=False, client_info="2.0.0")
    assert client.machine_instances.create("player", "on-v1")["state"] == "idle"
    # Code the caller gzipped, made current.
    v3 = client.machine_versions.create(
        "player", gzipped_code=gzip.compress(PLAYER_V2.encode()), make_current=True
    )
    assert client.machine_instances.create("player", "on-v3")["state"] == "stopped"
    on_v2 = client.machine_instances.create(
        "player", "on-v2", machine_version_id=v2["machineVersionId"]
    )
    assert on_v2["state"] == "stopped"
    listed = all_pages(client.machine_versions.list, "player", key="versions")
    assert [v["id"] for v in listed] == [
        v1["machineVersionId"], v2["machineVersionId"], v3["machineVersionId"],
    ]  # fmt: skip
    assert [v["clientInfo"] for v in listed[:2]] == ["1.0.0", "2.0.0"]


def test_create_version_in_three_steps(client: Any) -> None:
    client.machines.create("player")
    made = client.machine_versions.provisionally_create("player", gzip=True)
    assert set(made) == {"machineVersionId", "codeUploadUrl", "codeUploadFields"}
    # Upload as any S3-style presigned POST: the signed fields, then the file; no bearer token.
    files = {"file": ("player.js", gzip.compress(PLAYER.encode()), "application/javascript")}
    fields = {**made["codeUploadFields"], "content-encoding": "gzip"}
    assert httpx.post(made["codeUploadUrl"], data=fields, files=files).is_success
    done = client.machine_versions.finalize(
        "player", made["machineVersionId"], client_info="manual", make_current=True
    )
    assert client.machines.get("player")["machine"]["currentVersion"]["id"] == done[
        "machineVersionId"
    ]


def test_version_errors(client: Any) -> None:
    client.machines.create("player")
    with pytest.raises(ClientError) as invalid:
        client.machine_versions.create("player", BROKEN)
    assert invalid.value.status == 400
    with pytest.raises(NotFoundError):
        client.machine_versions.create("nope", PLAYER)
    with pytest.raises(ValueError, match="exactly one"):
        client.machine_versions.create("player")
    made = client.machine_versions.provisionally_create("player")
    with pytest.raises(ClientError):  # finalized before its code was uploaded
        client.machine_versions.finalize("player", made["machineVersionId"])


def test_upload_refused_is_an_api_error(client: Any) -> None:
    """A refused upload (here: a tampered signature) raises as the official client's does."""
    client.machines.create("player")
    made = client.machine_versions.provisionally_create("player")
    tampered = {name: value + "x" for name, value in made["codeUploadFields"].items()}
    flow = upload_code(made["codeUploadUrl"], tampered, b"code", gzipped=False, file_name="p.js")
    with pytest.raises(ApiError, match="error uploading code") as refused:
        run_flow(client, flow)
    assert type(refused.value) is ApiError  # as the official client: not by status
    assert refused.value.status == 400 and "upload token" in str(refused.value)
