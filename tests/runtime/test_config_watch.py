"""A config change NOTIFY reaches a connected device without a reconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.pipeline.interfaces import Pipeline
from runtime.protocol.device import ListenMode, ListenState
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, running_runtime

T = TEST_TIME_UNIT


def make(agent: Any) -> Pipeline:
    name = (agent or {}).get("name", "none")
    return double_pipeline(f"<chunk>This is {name}.</chunk>", "who are you")


async def test_notify_switches_the_agent_of_a_connected_device(pg_server_url: str) -> None:
    platform = FakePlatform()
    device = platform.add_device(agent={"id": "a1", "name": "First"})
    async with running_runtime(
        make, platform, POSTGRES_URI=pg_server_url, CLOSE_DEVICE_AFTER_TURN=False
    ) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        await client.listen(ListenState.START, ListenMode.MANUAL)
        await client.send_audio(loud_frame(300))
        await client.listen(ListenState.STOP)
        first = await client.next_json(lambda m: m.get("state") == "sentence_start")
        assert first["text"] == "This is First."
        await client.next_json(lambda m: m.get("state") == "stop")

        device.agent = {"id": "a2", "name": "Second"}
        session = rt.app.ctx.registry.devices[device.uuid]
        for _ in range(int(100 * T)):  # the listener connects in the background
            conn = await asyncpg.connect(pg_server_url)
            try:
                await conn.execute("select pg_notify('opendot_device_config', $1)", device.uuid)
            finally:
                await conn.close()
            await asyncio.sleep(0.1)
            if (session.agent or {}).get("name") == "Second":
                break
        await client.listen(ListenState.START, ListenMode.MANUAL)
        await client.send_audio(loud_frame(300) + silence_frame(120))
        await client.listen(ListenState.STOP)
        second = await client.next_json(lambda m: m.get("state") == "sentence_start")
        assert second["text"] == "This is Second."
        await client.close()
