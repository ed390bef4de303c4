"""One bad string must not stop record-keeping (issue 11, item 1).

A `listen detect` whose wake word was `"\\ud800"` (a lone surrogate) made the
record flush raise `UnicodeEncodeError`; the flusher task died and no session,
turn or event of any tenant was stored again. Strings are now cleaned where
they enter (the protocol's JSON loader), records again when they are added, and
the flusher survives whatever a record can still do to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from runtime.api_client import ApiRefused
from runtime.metrics import Metrics
from runtime.pipeline.doubles import double_pipeline, loud_frame, silence_frame
from runtime.protocol.device import ListenMode, ListenState
from runtime.records import RecordSink
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import DeviceClient, FakePlatform, running_runtime

T = TEST_TIME_UNIT
UTTERANCE = loud_frame(600) + silence_frame(600)


class Api:
    """Accepts records the way httpx would send them: JSON-encoded, UTF-8."""

    def __init__(self) -> None:
        self.turns: list[Any] = []
        self.events: list[Any] = []
        self.fail_with: BaseException | None = None

    async def open_session(self, body: Mapping[str, Any]) -> None:
        pass

    async def close_session(self, body: Mapping[str, Any]) -> None:
        pass

    async def post_records(self, turns: list[Any], events: list[Any]) -> None:
        import json

        if self.fail_with is not None:
            raise self.fail_with
        if any(r.get("breaks_contract") for r in [*turns, *events]):
            raise ApiRefused(422, "a record breaks the contract")
        json.dumps([turns, events], ensure_ascii=False, allow_nan=False).encode()
        self.turns += turns
        self.events += events


async def test_a_poison_record_is_dropped_and_the_flusher_goes_on() -> None:
    api, metrics = Api(), Metrics()
    sink = RecordSink(api, metrics, flush_interval_s=0.01)
    task = sink.start()
    sink.add_event({"id": "e1", "payload": {"text": "\ud800"}})  # cleaned on the way in
    sink.add_event({"id": "e2", "payload": {"value": {1, 2}}})  # not JSON at all: poison
    sink.add_turn({"id": "t1", "transcript": "fine"})
    for _ in range(int(200 * T)):
        if not sink.pending:
            break
        await asyncio.sleep(0.01)
    assert [e["id"] for e in api.events] == ["e1"]
    assert api.events[0]["payload"]["text"] == "\ufffd"
    assert [t["id"] for t in api.turns] == ["t1"]
    assert metrics.records_dropped.get(kind="poison") == 1
    # A failure that no single record explains costs its batch, not the flusher.
    api.fail_with = RuntimeError("a bug")
    sink.add_turn({"id": "t2"})
    for _ in range(int(200 * T)):
        if not sink.pending:
            break
        await asyncio.sleep(0.01)
    assert metrics.records_dropped.get(kind="poison") == 2
    api.fail_with = None
    sink.add_turn({"id": "t3"})
    for _ in range(int(200 * T)):
        if not sink.pending:
            break
        await asyncio.sleep(0.01)
    assert [t["id"] for t in api.turns] == ["t1", "t3"]
    assert not task.done() and sink.status()["state"] == "running"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sink.status()["state"] == "dead"


async def test_a_refused_record_costs_itself_not_its_batch() -> None:
    api, metrics = Api(), Metrics()
    sink = RecordSink(api, metrics)
    for i in range(7):
        sink.add_turn({"id": f"t{i}", "breaks_contract": i == 4})
        sink.add_event({"id": f"e{i}"})
    assert await sink.flush_once()
    assert [t["id"] for t in api.turns] == ["t0", "t1", "t2", "t3", "t5", "t6"]
    assert len(api.events) == 7
    assert metrics.records_dropped.get(kind="refused") == 1
    assert metrics.records_sent.get(kind="turn") == 6
    assert sink.pending == 0


async def test_a_lone_surrogate_on_the_wire_does_not_stop_record_keeping() -> None:
    platform = FakePlatform()
    device = platform.add_device()

    async with running_runtime(lambda _a: double_pipeline(), platform) as rt:
        client = DeviceClient(rt.ws_base, device.token)
        await client.connect()
        await client.hello()
        # JSON escapes, as a device would send them: valid UTF-8 on the wire.
        await client.send_text('{"type":"listen","state":"detect","text":"\\ud800\\u0000"}')
        await client.send_text('{"type":"abort","reason":"\\udfff"}')
        await client.send_text('{"type":"mcp","payload":{"x":NaN}}')
        await client.listen(ListenState.START, ListenMode.AUTO)
        await client.send_audio(UTTERANCE)
        code, reason = await client.until_closed()
        assert (code, reason) == (1000, "turn_complete")
        for _ in range(int(200 * T)):
            if platform.turns and client.session_id in platform.closed:
                break
            await asyncio.sleep(0.02)
        metrics = rt.app.ctx.metrics
        assert metrics.records_dropped.get(kind="poison") == 0
    (turn,) = platform.turns.values()
    assert turn["outcome"] == "completed"
    kinds = {e["kind"]: e["payload"] for e in platform.events}
    assert kinds["wake_word"] == {"text": "\ufffd"}
    assert kinds["abort"] == {"reason": "\ufffd"}
    assert kinds["protocol_error"]["message"] == "malformed JSON message"
