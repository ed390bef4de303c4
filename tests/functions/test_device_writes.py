"""Whole-device PUTs that race: `updatedAt` makes a stale write a 409, never a silent loss.

The console sends "checking" then "idle" back to back; on the wire they may
arrive in either order. A PUT carrying the `updatedAt` it was based on is
refused once the device has moved on, whoever moved it (another PUT, the
runtime reporting the device online).
"""

from __future__ import annotations

import asyncio

import httpx

from tests.functions.conftest import auth, internal_headers, signup


async def _device(client: httpx.AsyncClient, user: dict[str, str], serial: str) -> dict:
    created = await client.post(
        "/api/dot-devices", headers=auth(user), json={"name": "Desk", "serialNumber": serial}
    )
    assert created.status_code == 201
    return dict(created.json()["device"])


async def test_a_stale_whole_device_put_is_refused_in_either_order(
    client: httpx.AsyncClient,
) -> None:
    user = await signup(client)
    for first, second in (("checking", "idle"), ("idle", "checking")):
        device = await _device(client, user, f"SN-{first}")
        url = f"/api/dot-devices/{device['id']}"
        landed = await client.put(url, headers=auth(user), json={**device, "updateMode": first})
        assert landed.status_code == 200, landed.text
        assert landed.json()["device"]["updatedAt"] > device["updatedAt"]
        stale = await client.put(url, headers=auth(user), json={**device, "updateMode": second})
        assert stale.status_code == 409
        assert "Load the device again" in stale.json()["error"]
        now = (await client.get(url, headers=auth(user))).json()["device"]
        assert now["updateMode"] == first, "the refused write changed nothing"
        # Based on the current version, the same write goes through.
        fresh = await client.put(url, headers=auth(user), json={**now, "updateMode": second})
        assert fresh.status_code == 200 and fresh.json()["device"]["updateMode"] == second


async def test_concurrent_puts_from_one_version_cannot_both_land(
    client: httpx.AsyncClient,
) -> None:
    user = await signup(client)
    device = await _device(client, user, "SN-RACE")
    url = f"/api/dot-devices/{device['id']}"
    results = await asyncio.gather(
        *(
            client.put(url, headers=auth(user), json={**device, "updateMode": mode})
            for mode in ("checking", "idle", "binding")
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409]
    winner = next(r for r in results if r.status_code == 200).json()["device"]
    now = (await client.get(url, headers=auth(user))).json()["device"]
    assert now["updateMode"] == winner["updateMode"]


async def test_a_copy_older_than_the_runtimes_report_cannot_overwrite_it(
    client: httpx.AsyncClient,
) -> None:
    user = await signup(client)
    device = await _device(client, user, "SN-LIVE")
    url = f"/api/dot-devices/{device['id']}"
    online = await client.post(
        "/api/internal/device-runtime/state",
        json={"deviceId": device["id"], "availability": "available"},
        headers=internal_headers(),
    )
    assert online.status_code == 200
    stale = await client.put(url, headers=auth(user), json={**device, "availability": "offline"})
    assert stale.status_code == 409
    now = (await client.get(url, headers=auth(user))).json()["device"]
    assert now["availability"] == "available"
    # A PUT without updatedAt (a script, a partial edit) is applied as before.
    partial = await client.put(url, headers=auth(user), json={"name": "Hall"})
    assert partial.status_code == 200 and partial.json()["device"]["name"] == "Hall"
    bad = await client.put(url, headers=auth(user), json={"name": "X", "updatedAt": "soon"})
    assert bad.status_code == 400
