"""Machine versions: the three-step upload, validation, limits, listing."""

from __future__ import annotations

import gzip
import os

import httpx

from tests.conftest import Server
from tests.support.bundles import COUNTER, NO_AUTHORIZERS, NOT_A_MACHINE, TOGGLER
from tests.support.client import Api, assert_error, upload


def test_plain_and_gzip_uploads_both_finalize(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    first = api.upload_version("m", TOGGLER, gzipped=True, make_current=False, client_info="1")
    second = api.upload_version("m", COUNTER, gzipped=False, make_current=True, client_info="2")
    assert first.startswith("ver_") and second.startswith("ver_") and first != second
    versions = api.ok("GET", "/machines/m/v")["versions"]
    assert [(v["id"], v["clientInfo"]) for v in versions] == [(first, "1"), (second, "2")]
    assert api.ok("GET", "/machines/m")["machine"]["currentVersion"]["id"] == second


def test_provisional_version_matches_the_client_contract(server: Server, api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    response = api.request("POST", "/machines/m/v?gzip", headers={"content-length": "0"})
    made = response.json()
    assert response.status_code == 200
    assert made["codeUploadUrl"].startswith(server.url + "/")
    assert all(isinstance(v, str) for v in made["codeUploadFields"].values())
    assert not set("/?#%") & set(made["machineVersionId"])
    assert api.ok("GET", "/machines/m/v")["versions"] == []  # provisional ones are not listed


def test_upload_is_not_authorized_by_bearer_but_by_its_token(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    made = api.ok("POST", "/machines/m/v")
    forged = {**made, "codeUploadFields": {"token": made["codeUploadFields"]["token"] + "x"}}
    assert_error(upload(forged, TOGGLER.encode(), gzipped=False), 400, "invalid-parameter")
    no_token = {**made, "codeUploadFields": {}}
    assert_error(upload(no_token, TOGGLER.encode(), gzipped=False), 400)
    not_multipart = httpx.post(made["codeUploadUrl"], content=b"hello")
    assert_error(not_multipart, 400)
    finalize = api.request("PUT", f"/machines/m/v/{made['machineVersionId']}", {})
    assert_error(finalize, 400)  # nothing was uploaded


def test_finalize_rejects_tampered_signed_ids(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    made = api.ok("POST", "/machines/m/v")
    assert upload(made, TOGGLER.encode(), gzipped=False).status_code == 204
    pretty, _, signature = made["machineVersionId"].partition(".")
    for bad in [pretty, f"{pretty}.AAAAAAAAAAAAAAAAAAAAAA", "ver_nope", signature]:
        assert_error(api.request("PUT", f"/machines/m/v/{bad}", {"makeCurrent": True}), 404)
    api.ok("POST", "/machines", {"slug": "other"})
    other = api.request("PUT", f"/machines/other/v/{made['machineVersionId']}", {})
    assert_error(other, 404)
    assert api.ok("GET", "/machines/m/v")["versions"] == []


def test_finalize_with_empty_body_is_accepted(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    made = api.ok("POST", "/machines/m/v")
    assert upload(made, TOGGLER.encode(), gzipped=False).status_code == 204
    done = api.ok("PUT", f"/machines/m/v/{made['machineVersionId']}")
    assert done["machineVersionId"].startswith("ver_")
    assert "currentVersion" not in api.ok("GET", "/machines/m")["machine"]


def test_invalid_bundles_are_rejected_at_finalize(api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    for source in [NOT_A_MACHINE, NO_AUTHORIZERS, "this is not javascript {", "\udcff"]:
        made = api.ok("POST", "/machines/m/v")
        code = source.encode("utf-8", "surrogateescape")
        assert upload(made, code, gzipped=False).status_code == 204
        finalize = api.request("PUT", f"/machines/m/v/{made['machineVersionId']}", {})
        assert_error(finalize, 400, "invalid-bundle")
    assert api.ok("GET", "/machines/m/v")["versions"] == []


def test_size_limits(server: Server, api: Api) -> None:
    api.ok("POST", "/machines", {"slug": "m"})
    made = api.ok("POST", "/machines/m/v")
    raw_limit = server.settings.max_bundle_bytes
    bomb = gzip.compress(b" " * (raw_limit + 1))  # small gzip, too big inflated
    assert_error(upload(made, bomb, gzipped=True), 413, "payload-too-large")
    noise = os.urandom(server.settings.max_bundle_gzip_bytes + 1)
    assert_error(upload(made, gzip.compress(noise), gzipped=True), 413, "payload-too-large")
    huge = b"x" * (server.settings.max_upload_body_bytes + 1)
    assert_error(upload(made, huge, gzipped=False), 413, "payload-too-large")
    assert_error(upload(made, b"\x1f\x8bnot gzip", gzipped=True), 400)
    # the provisional version still accepts a good upload afterwards
    assert upload(made, gzip.compress(TOGGLER.encode()), gzipped=True).status_code == 204
    assert api.ok("PUT", f"/machines/m/v/{made['machineVersionId']}", {})


def test_versions_of_missing_machine_are_404(api: Api) -> None:
    assert_error(api.request("GET", "/machines/nope/v"), 404)
    assert_error(api.request("POST", "/machines/nope/v"), 404)
