"""Releases, rollouts and pins through the real API, RLS and local storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from shared.firmware.image import build_app_image
from tests.firmware.conftest import BOARD, make_dots, ota, upload
from tests.functions.conftest import AppFactory, auth, internal_headers, signup


@pytest.fixture
async def api(make_client: AppFactory, tmp_path: Path) -> httpx.AsyncClient:
    return await make_client(OPENDOT_DATA_DIR=str(tmp_path), OPENDOT_FIRMWARE_MAX_BYTES=64 * 1024)


async def test_upload_records_size_and_hash_and_refuses_with_sentences(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    owner = await signup(api)
    image = build_app_image("1.1.0", 5000)
    created = await upload(api, owner, "1.1.0", content=image, notes="fixes Wi-Fi")
    assert created.status_code == 201, created.text
    release = created.json()["release"]
    assert release["board"] == BOARD and release["version"] == "1.1.0"
    assert release["size"] == 5000 and release["sha256"] == hashlib.sha256(image).hexdigest()
    assert release["notes"] == "fixes Wi-Fi" and release["createdAt"]
    stored = tmp_path / "firmware" / f"{release['id']}.bin"
    assert stored.read_bytes() == image

    async def refused(response: httpx.Response, status: int, words: str) -> None:
        assert response.status_code == status, response.text
        assert words in response.json()["error"]

    await refused(await upload(api, owner, "1.1.0"), 409, "Version 1.1.0 of bread-compact-wifi")
    await refused(await upload(api, owner, "1.01.0"), 409, "as 1.1.0")
    await refused(await upload(api, owner, "1.2.0", content=b""), 400, "The file is empty.")
    big = build_app_image("1.2.0", 70 * 1024)
    await refused(await upload(api, owner, "1.2.0", content=big), 413, "limit for a release")
    await refused(await upload(api, owner, "v1.2"), 400, "numbers separated by dots")
    await refused(await upload(api, owner, "1.2.0", board="bad board"), 400, "board must be")
    await refused(
        await upload(api, owner, "1.2.0", content=build_app_image("1.2.1", 4096)),
        400,
        "says it is version 1.2.1",
    )
    await refused(
        await upload(api, owner, "1.2.0", content=b"\x00" * 4096), 400, "not an ESP32 firmware"
    )
    not_form = await api.post("/api/firmware/releases", json={"board": BOARD}, headers=auth(owner))
    await refused(not_form, 415, "multipart/form-data")
    no_file = await api.post(
        "/api/firmware/releases",
        data={"board": BOARD, "version": "1.2.0"},
        files={"other": ("x", b"y")},
        headers=auth(owner),
    )
    await refused(no_file, 400, "file is required")
    anonymous = await api.post(
        "/api/firmware/releases", data={"board": BOARD}, files={"file": ("x", b"y")}
    )
    assert anonymous.status_code == 401
    # Nothing half-written: one release, one file.
    listed = (await api.get("/api/firmware/releases", headers=auth(owner))).json()["releases"]
    assert [r["version"] for r in listed] == ["1.1.0"]
    assert len(list((tmp_path / "firmware").iterdir())) == 1


async def test_rollout_lifecycle_and_ownership(api: httpx.AsyncClient, tmp_path: Path) -> None:
    owner, stranger = await signup(api), await signup(api)
    release = (await upload(api, owner, "1.1.0")).json()["release"]
    created = await api.post(
        "/api/firmware/rollouts",
        json={"releaseId": release["id"], "percent": 10},
        headers=auth(owner),
    )
    assert created.status_code == 201, created.text
    rollout = created.json()["rollout"]
    assert {k: rollout[k] for k in ("releaseId", "board", "percent", "status")} == {
        "releaseId": release["id"],
        "board": BOARD,
        "percent": 10,
        "status": "active",
    }
    assert rollout["counts"] == {"offered": 0, "downloaded": 0, "updated": 0, "stuck": 0}
    path = f"/api/firmware/rollouts/{rollout['id']}"

    raised = await api.put(path, json={"percent": 30}, headers=auth(owner))
    assert raised.status_code == 200 and raised.json()["rollout"]["percent"] == 30
    lowered = await api.put(path, json={"percent": 20}, headers=auth(owner))
    assert lowered.status_code == 409 and "only be raised" in lowered.json()["error"]
    assert (await api.post(path + "/resume", headers=auth(owner))).status_code == 409
    paused = await api.post(path + "/pause", headers=auth(owner))
    assert paused.json()["rollout"]["status"] == "paused"
    resumed = await api.post(path + "/resume", headers=auth(owner))
    assert resumed.json()["rollout"]["status"] == "active"

    # A stranger sees nothing and can touch nothing.
    assert (await api.get(path, headers=auth(stranger))).status_code == 404
    assert (await api.post(path + "/abort", headers=auth(stranger))).status_code == 404
    theirs = await api.post(
        "/api/firmware/rollouts",
        json={"releaseId": release["id"], "percent": 100},
        headers=auth(stranger),
    )
    assert theirs.status_code == 404
    assert (await api.get("/api/firmware/releases", headers=auth(stranger))).json() == {
        "releases": []
    }
    gone = await api.delete(f"/api/firmware/releases/{release['id']}", headers=auth(stranger))
    assert gone.status_code == 404

    busy = await api.delete(f"/api/firmware/releases/{release['id']}", headers=auth(owner))
    assert busy.status_code == 409 and "abort that rollout" in busy.json()["error"]
    aborted = await api.post(path + "/abort", headers=auth(owner))
    assert aborted.json()["rollout"]["status"] == "aborted" and aborted.json()["rollout"]["endedAt"]
    assert (await api.post(path + "/resume", headers=auth(owner))).status_code == 409
    deleted = await api.delete(f"/api/firmware/releases/{release['id']}", headers=auth(owner))
    assert deleted.status_code == 200
    assert not (tmp_path / "firmware" / f"{release['id']}.bin").exists()
    assert (await api.get(path, headers=auth(owner))).status_code == 404

    bad = await api.post(
        "/api/firmware/rollouts",
        json={"releaseId": release["id"], "percent": 101},
        headers=auth(owner),
    )
    assert bad.status_code == 400


async def test_cohort_is_stable_and_about_the_percentage(
    api: httpx.AsyncClient, database_url: str
) -> None:
    owner = await signup(api)
    dots = await make_dots(database_url, owner["id"], 100)
    release = (await upload(api, owner, "1.1.0")).json()["release"]
    rollout = (
        await api.post(
            "/api/firmware/rollouts",
            json={"releaseId": release["id"], "percent": 10},
            headers=auth(owner),
        )
    ).json()["rollout"]

    async def offered() -> set[str]:
        return {d.id for d in dots if "firmware" in await ota(api, d, "1.0.0")}

    first = await offered()
    assert 3 <= len(first) <= 20, len(first)  # about 10 of 100
    answer = await ota(api, next(d for d in dots if d.id in first), "1.0.0")
    assert answer["firmware"]["version"] == "1.1.0" and "force" not in answer["firmware"]
    assert answer["firmware"]["url"].startswith("http://dots.test:8787/ota/firmware/")
    assert answer["firmware"]["size"] == 4096 and answer["firmware"]["sha256"] == release["sha256"]
    assert set(answer) == {"server_time", "websocket", "firmware"}

    await api.put(
        f"/api/firmware/rollouts/{rollout['id']}", json={"percent": 30}, headers=auth(owner)
    )
    wider = await offered()
    assert first < wider and 15 <= len(wider) <= 45, len(wider)

    # A Dot that comes back on the new version has completed its step.
    updated = next(d for d in dots if d.id in first)
    assert "firmware" not in await ota(api, updated, "1.1.0")
    watched = (
        await api.get(f"/api/firmware/rollouts/{rollout['id']}", headers=auth(owner))
    ).json()["rollout"]
    assert watched["counts"]["offered"] == len(wider) and watched["counts"]["updated"] == 1
    states = {d["deviceId"]: d for d in watched["devices"]}
    assert states[updated.id]["state"] == "updated"
    assert states[updated.id]["currentVersion"] == "1.1.0"
    assert states[updated.id]["fromVersion"] == "1.0.0"

    # Stuck: offered OPENDOT_FIRMWARE_MAX_OFFERS (3) times and still old -> not again.
    laggard = next(d for d in dots if d.id in first and d.id != updated.id)
    assert "firmware" in await ota(api, laggard, "1.0.0")  # third offer
    assert "firmware" not in await ota(api, laggard, "1.0.0")  # not a fourth
    watched = (
        await api.get(f"/api/firmware/rollouts/{rollout['id']}", headers=auth(owner))
    ).json()["rollout"]
    assert watched["counts"]["stuck"] == 1

    # Abort stops new offers.
    await api.post(f"/api/firmware/rollouts/{rollout['id']}/abort", headers=auth(owner))
    assert await offered() == set()


async def test_other_boards_pins_and_rollback(api: httpx.AsyncClient, database_url: str) -> None:
    owner = await signup(api)
    dot, other = await make_dots(database_url, owner["id"], 2)
    old = (await upload(api, owner, "1.0.0")).json()["release"]
    new = (await upload(api, owner, "1.1.0")).json()["release"]
    await upload(api, owner, "2.0.0", board="other-board")
    rollout = (
        await api.post(
            "/api/firmware/rollouts",
            json={"releaseId": new["id"], "percent": 100},
            headers=auth(owner),
        )
    ).json()["rollout"]
    assert (await ota(api, dot, "1.0.0"))["firmware"]["version"] == "1.1.0"
    # Without its credential (a bare MAC anyone can send) a Dot hears nothing about it.
    bare = await api.post(
        "/api/internal/device-activations/bootstrap",
        json={"deviceId": dot.mac, "userAgent": f"{BOARD}/1.0.0", "systemInfo": {}},
        headers=internal_headers(),
    )
    assert bare.status_code == 200 and "firmware" not in bare.json()
    assert "firmware" not in await ota(api, other, "1.0.0", board="other-board")
    assert "firmware" not in await ota(api, dot, "1.2.0")  # never a downgrade uninvited
    assert "firmware" not in await ota(api, dot, "v1.0-dirty")  # the firmware could not compare

    # Pinning wins over the rollout, downgrading with force.
    device_path = f"/api/dot-devices/{dot.id}"
    pinned = await api.put(device_path, json={"firmwarePin": "1.0.0"}, headers=auth(owner))
    assert pinned.status_code == 200 and pinned.json()["device"]["firmwarePin"] == "1.0.0"
    answer = await ota(api, dot, "1.1.0")
    assert answer["firmware"]["version"] == "1.0.0" and answer["firmware"]["force"] == 1
    assert "firmware" not in await ota(api, dot, "1.0.0")  # pinned and there: stays
    typo = await api.put(device_path, json={"firmwarePin": "1.9.9"}, headers=auth(owner))
    assert typo.status_code == 400 and "no release 1.9.9" in typo.json()["error"]
    await api.put(device_path, json={"firmwarePin": None}, headers=auth(owner))
    assert (await ota(api, dot, "1.0.0"))["firmware"]["version"] == "1.1.0"

    # Roll back: rolling out the previous release, naming the version to leave.
    back = await api.post(
        "/api/firmware/rollouts",
        json={"releaseId": old["id"], "percent": 100, "fromVersions": ["1.1.0"]},
        headers=auth(owner),
    )
    assert back.status_code == 201
    superseded = (
        await api.get(f"/api/firmware/rollouts/{rollout['id']}", headers=auth(owner))
    ).json()["rollout"]
    assert superseded["status"] == "superseded"
    answer = await ota(api, dot, "1.1.0")
    assert answer["firmware"] == {**answer["firmware"], "version": "1.0.0", "force": 1}
    assert "firmware" not in await ota(api, other, "1.0.0")
    bad = await api.post(
        "/api/firmware/rollouts",
        json={"releaseId": old["id"], "percent": 100, "fromVersions": ["v1"]},
        headers=auth(owner),
    )
    assert bad.status_code == 400 and "fromVersions" in bad.json()["error"]
    stranger = await signup(api)
    foreign = await api.post(
        "/api/firmware/rollouts",
        json={"releaseId": old["id"], "percent": 100, "deviceIds": [dot.id]},
        headers=auth(stranger),
    )
    assert foreign.status_code == 404
    named = await api.post(
        "/api/firmware/rollouts",
        json={"releaseId": new["id"], "percent": 100, "deviceIds": [other.id]},
        headers=auth(owner),
    )
    assert named.status_code == 201
    assert "firmware" not in await ota(api, dot, "1.0.0")
    assert (await ota(api, other, "1.0.0"))["firmware"]["version"] == "1.1.0"
