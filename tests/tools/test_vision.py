"""Vision end to end: the model calls the Dot's camera tool, the simulated camera
posts its generated photo to the runtime's vision endpoint with the token from
`initialize`, the runtime asks a loopback fake vision model, and the answer comes
back as the tool result. Plus the token's and the upload's limits."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from runtime.pipeline.doubles import double_pipeline
from runtime.pipeline.interfaces import LlmOutput, LlmRequest, Pipeline, ToolCall, ToolResult
from runtime.providers.settings import ProviderSettings
from runtime.simulator.device import SimulatedDevice
from runtime.simulator.identity import DeviceIdentity
from runtime.simulator.mcp_tools import SimulatedTools, generated_photo
from runtime.tools import vision
from tests.conftest import TEST_TIME_UNIT
from tests.runtime.harness import SECRET, FakePlatform, running_runtime
from tests.tools.servers import serve
from tests.tools.test_device_flow import UTTERANCE

T = TEST_TIME_UNIT


class CameraLlm:
    name = "camera-llm"

    async def stream(self, request: LlmRequest) -> AsyncIterator[LlmOutput]:
        last = request.messages[-1]
        if isinstance(last, ToolResult):
            yield f"<chunk>The camera says: {last.output}</chunk>"
            return
        camera = next(t.name for t in request.tools if t.name == "self_camera_take_photo")
        yield ToolCall("cam-1", camera, json.dumps({"question": "What do you see?"}))


def test_tokens_are_single_purpose_and_short_lived() -> None:
    token = vision.mint_token(SECRET, "dev", "sess", now=1000.0)
    grant = vision.check_token(SECRET, token, now=1001.0)
    assert grant == vision.VisionGrant("dev", "sess", 1000.0 + vision.TOKEN_TTL_S)
    assert vision.check_token(SECRET, token, now=1000.0 + vision.TOKEN_TTL_S + 1) == (
        "The vision token has expired."
    )
    assert vision.check_token("another-secret", token) == (
        "The vision token is not one this runtime issued."
    )
    head, _body, sig = token.split(".")
    forged = json.dumps({"p": "voice", "d": "dev", "s": "sess", "e": 9e9}).encode()
    assert "not one this runtime issued" in str(
        vision.check_token(SECRET, f"{head}.{vision._b64(forged)}.{sig}")
    )
    assert (
        vision.check_token(SECRET, "od_vt_x") == "The vision token is not one this runtime issued."
    )
    assert vision.sniff_image(generated_photo()) == "image/png"
    assert vision.sniff_image(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert vision.sniff_image(b"RIFF0000WEBP") == "image/webp"
    assert vision.sniff_image(b"GIF89a") == "image/gif"
    assert vision.sniff_image(b"%PDF") is None


async def test_camera_tool_through_the_vision_endpoint() -> None:
    seen: list[dict[str, Any]] = []

    async def answer(request: Any) -> Any:
        from starlette.responses import JSONResponse

        body = await request.json()
        seen.append(body)
        text = "A colourful gradient."
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": text}}]})

    from starlette.applications import Starlette
    from starlette.routing import Route

    fake_vision = Starlette(routes=[Route("/v1/chat/completions", answer, methods=["POST"])])
    async with serve(fake_vision) as vision_base:
        agent = {
            "id": "a-vision",
            "name": "Seer",
            "tools": {
                "vision": {
                    "enabled": True,
                    "model": "vision-test",
                    "baseUrl": vision_base + "/v1",
                    "apiKeyName": "",
                }
            },
        }
        platform = FakePlatform()
        registered = platform.add_device(agent)

        def pipeline(_agent: Any) -> Pipeline:
            return dataclasses.replace(double_pipeline("", "what do you see"), llm=CameraLlm())

        tools = SimulatedTools()
        async with running_runtime(pipeline, platform) as rt:
            rt.app.ctx.provider_settings = ProviderSettings(
                _env_file=None,  # type: ignore[call-arg]
                OPENDOT_ALLOW_PRIVATE_BASE_URLS=True,  # type: ignore[call-arg]
            )
            identity = DeviceIdentity(mac="02:aa:bb:cc:dd:41")
            identity.websocket.update(token=registered.token, url=f"{rt.ws_base}/ws")
            async with SimulatedDevice(rt.http_base, identity, pace=0, tools=tools) as device:
                turn = await device.turn(UTTERANCE, reply_timeout=20 * T)
            assert tools.vision is not None and tools.vision.url == f"{rt.http_base}/vision/explain"
            url, token = tools.vision.url, tools.vision.token
            async with httpx.AsyncClient() as http:
                photo = {"file": ("camera.png", generated_photo(), "image/png")}
                no_token = await http.post(url, files=photo, data={"question": "x"})
                huge = await http.post(
                    url,
                    headers={"Authorization": f"Bearer {token}"},
                    files={
                        "file": (
                            "big.jpg",
                            b"\xff\xd8\xff" + bytes(vision.MAX_BODY_BYTES),
                            "image/jpeg",
                        )
                    },
                )
                not_image = await http.post(
                    url,
                    headers={"Authorization": f"Bearer {token}"},
                    files={"file": ("x.txt", b"hello", "text/plain")},
                )
                garbage = await http.post(
                    url,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "multipart/form-data",
                    },
                    content=b"not multipart",
                )
    assert "The camera says:" in turn.reply_text and "A colourful gradient." in turn.reply_text
    assert tools.calls == [("self.camera.take_photo", {"question": "What do you see?"})]
    content = seen[0]["messages"][0]["content"]
    assert seen[0]["model"] == "vision-test"
    assert content[0] == {"type": "text", "text": "What do you see?"}
    data_url = content[1]["image_url"]["url"]
    assert data_url.startswith("data:image/png;base64,")
    assert base64.b64decode(data_url.split(",", 1)[1]) == generated_photo()
    assert (
        no_token.status_code == 401 and no_token.json()["message"] == "A vision token is required."
    )
    assert huge.status_code == 413 and huge.json()["message"] == "The photo is larger than 2 MiB."
    assert not_image.status_code == 400
    assert garbage.status_code == 400
    assert time.time() < vision.check_token(SECRET, token).expires_at  # type: ignore[union-attr]
