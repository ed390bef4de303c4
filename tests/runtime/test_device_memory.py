"""A device's memory and configuration against the real platform API and database:
memory resets (through the internal endpoint, signalled to a connected device,
implied by a rebind to another agent) and the config listener catching up on
signals it missed while its connection was down."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from runtime.config_watch import MEMORY_CHANNEL
from runtime.pipeline.doubles import double_pipeline, loud_frame
from runtime.pipeline.interfaces import LlmRequest, Pipeline
from runtime.protocol.device import ListenMode, ListenState
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, RunningRuntime
from tests.runtime.platform_api import (
    Provisioned,
    bind,
    create_agent,
    eventually,
    provision_device,
    records_flushed,
    reset_memory_internally,
    runtime_on_api,
)

T = TEST_TIME_UNIT


@dataclass
class Conversation:
    """Provider doubles whose LLM notes which agent answered and what it was given."""

    seen: list[tuple[str, list[str]]] = field(default_factory=list)

    def make(self, agent: Any) -> Pipeline:
        name = str((agent or {}).get("name", "no agent"))

        def reply(request: LlmRequest) -> str:
            self.seen.append((name, [m.content for m in request.messages]))
            return f"<chunk>{name} reply {len(self.seen)}.</chunk>"

        return double_pipeline(reply, "remember this")

    def history_lengths(self) -> list[int]:
        return [len(messages) for _, messages in self.seen]


async def spoken_turn(client: DeviceClient) -> str:
    """One push-to-talk turn; returns the sentence the device was told it hears."""
    await client.listen(ListenState.START, ListenMode.MANUAL)
    await client.send_audio(loud_frame(300))
    await client.listen(ListenState.STOP)
    sentence = await client.next_json(lambda m: m.get("state") == "sentence_start")
    await client.next_json(lambda m: m.get("state") == "stop")
    return str(sentence["text"])


async def socket_turn(rt: RunningRuntime, device: Provisioned) -> str:
    """A socket for one turn, closed by the runtime after it (the firmware's default)."""
    client = DeviceClient(rt.ws_base, device.token, device_id=device.mac)
    await client.connect()
    await client.hello()
    text = await spoken_turn(client)
    assert await client.until_closed() == (1000, "turn_complete")
    await client.close()
    return text


async def connected(rt: RunningRuntime, device: Provisioned) -> DeviceClient:
    client = DeviceClient(rt.ws_base, device.token, device_id=device.mac)
    await client.connect()
    await client.hello()
    return client


async def test_reset_through_the_internal_endpoint_empties_the_next_socket(
    api: httpx.AsyncClient, api_app: Any
) -> None:
    talk = Conversation()
    async with runtime_on_api(talk.make, api_app) as rt:
        device = await provision_device(api, rt)
        await socket_turn(rt, device)
        await socket_turn(rt, device)
        await records_flushed(rt)
        await reset_memory_internally(api, device.device_id)
        await socket_turn(rt, device)
        await socket_turn(rt, device)
    # The second socket remembered the first; after the reset, memory starts again.
    assert talk.history_lengths() == [1, 3, 1, 3]


async def test_a_connected_device_forgets_when_told_its_memory_was_reset(
    api: httpx.AsyncClient, api_app: Any, database_url: str
) -> None:
    talk = Conversation()
    async with runtime_on_api(
        talk.make, api_app, POSTGRES_URI=database_url, CLOSE_DEVICE_AFTER_TURN=False
    ) as rt:
        device = await provision_device(api, rt)
        client = await connected(rt, device)
        await spoken_turn(client)
        await spoken_turn(client)
        await records_flushed(rt)
        await reset_memory_internally(api, device.device_id)
        session: Any = rt.app.ctx.registry.devices[device.device_id]
        # The reset's own trigger sends the signal (see config_watch): once the listener
        # has subscribed, the session may already have forgotten here. It is repeated
        # until the listener, which connects in the background, has subscribed.
        conn = await asyncpg.connect(database_url)
        try:
            for _ in range(int(100 * T)):
                await conn.execute("select pg_notify($1, $2)", MEMORY_CHANNEL, device.device_id)
                try:
                    await eventually(lambda: len(session.memory) == 0, 0.2, "forgetting")
                    break
                except AssertionError:
                    continue
        finally:
            await conn.close()
        await spoken_turn(client)
        await client.close()
    assert talk.history_lengths() == [1, 3, 1]


async def test_rebinding_a_connected_device_to_another_agent_starts_afresh(
    api: httpx.AsyncClient, api_app: Any, database_url: str
) -> None:
    talk = Conversation()
    async with runtime_on_api(
        talk.make, api_app, POSTGRES_URI=database_url, CLOSE_DEVICE_AFTER_TURN=False
    ) as rt:
        device = await provision_device(api, rt)
        first = await create_agent(api, device.user, "Ada")
        second = await create_agent(api, device.user, "Bea")
        await bind(api, device.user, device.device_id, first)
        client = await connected(rt, device)
        assert await spoken_turn(client) == "Ada reply 1."
        assert await spoken_turn(client) == "Ada reply 2."
        session: Any = rt.app.ctx.registry.devices[device.device_id]

        await bind(api, device.user, device.device_id, second)
        await eventually(lambda: (session.agent or {}).get("id") == second, 20 * T, "the rebind")
        await eventually(lambda: len(session.memory) == 0, 10 * T, "the memory reset")
        assert await spoken_turn(client) == "Bea reply 3."
        await client.close()
        await records_flushed(rt)
        # A new socket: the memory the API returns holds Bea's turn only.
        client = await connected(rt, device)
        await spoken_turn(client)
        await client.close()
    assert talk.history_lengths() == [1, 3, 1, 3]
    assert talk.seen[3][1][:2] == ["remember this", "Bea reply 3."]


def _as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    netloc = f"{role}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def test_listener_catches_up_after_its_connection_drops(
    api: httpx.AsyncClient, api_app: Any, database_url: str
) -> None:
    """The listener's backend is terminated and kept from reconnecting while the
    device is rebound, so the rebind's NOTIFY reaches nobody; once the listener is
    back it refetches every connected device and the next turn uses the new agent."""
    role = f"listener_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'create role "{role}" login')
    talk = Conversation()
    try:
        async with runtime_on_api(
            talk.make,
            api_app,
            POSTGRES_URI=_as_role(database_url, role),
            CLOSE_DEVICE_AFTER_TURN=False,
        ) as rt:
            device = await provision_device(api, rt)
            first = await create_agent(api, device.user, "Ada")
            second = await create_agent(api, device.user, "Bea")
            await bind(api, device.user, device.device_id, first)
            client = await connected(rt, device)
            assert await spoken_turn(client) == "Ada reply 1."

            async def listener_pids() -> list[int]:
                rows = await admin.fetch(
                    "select pid from pg_stat_activity where usename = $1", role
                )
                return [r["pid"] for r in rows]

            for _ in range(int(200 * T)):
                if await listener_pids():
                    break
                await asyncio.sleep(0.05)
            assert await listener_pids(), "the listener never connected"
            await admin.execute(f'alter role "{role}" nologin')
            for pid in await listener_pids():
                await admin.execute("select pg_terminate_backend($1)", pid)

            await bind(api, device.user, device.device_id, second)
            session: Any = rt.app.ctx.registry.devices[device.device_id]
            await asyncio.sleep(0.5 * T)
            assert (session.agent or {}).get("id") == first  # the signal was lost
            assert not await listener_pids()

            await admin.execute(f'alter role "{role}" login')
            await eventually(
                lambda: (session.agent or {}).get("id") == second, 40 * T, "the catch-up"
            )
            assert await spoken_turn(client) == "Bea reply 2."
            await client.close()
    finally:
        await admin.execute(f'drop role if exists "{role}"')
        await admin.close()
    assert [name for name, _ in talk.seen] == ["Ada", "Bea"]
