from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.simulator.fake_runtime import FakeBehaviour, FakeRuntime

TIME_UNIT = float(os.environ.get("OPENDOT_TEST_TIME_UNIT", "1.0"))


@pytest.fixture
def behaviour() -> FakeBehaviour:
    return FakeBehaviour()


@pytest.fixture
async def fake(behaviour: FakeBehaviour) -> AsyncIterator[FakeRuntime]:
    runtime = FakeRuntime(behaviour)
    async with runtime.serve():
        yield runtime
