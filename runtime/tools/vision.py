"""Vision: the Dot's camera tool posts a photo here, an OpenAI-compatible vision model
describes it, and the answer becomes the tool's result.

`initialize` gives the device `capabilities.vision {url, token}` when the
agent's `tools.vision.enabled` is on. The token is single-purpose (it says
"vision" and names the device and session), short-lived (`TOKEN_TTL_S`) and
signed with a key derived from the runtime's internal secret, so any runtime
container behind the balancer can check it without shared state. The firmware
POSTs `multipart/form-data` (`question`, `file`) with `Authorization: Bearer
<token>`; the body is read with a hard cap (`MAX_IMAGE_BYTES`) before anything
is parsed. The model is asked through the same key rules and network guard as
the LLM stage (`tools.vision`: model, baseUrl, apiKeyName).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.pipeline.errors import ProviderError
from runtime.providers.http import CallPolicy, read_all, shared_client
from runtime.providers.keys import KeyResolver
from runtime.providers.netguard import Resolver, vet_url
from runtime.providers.openai_llm import endpoint
from runtime.providers.settings import ProviderSettings

TOKEN_PREFIX = "odvis"  # noqa: S105 - a prefix, not a secret
TOKEN_TTL_S = 600  # a device socket lives one turn; a kept-open one gets a new token per turn
MAX_IMAGE_BYTES = 2 * 1024 * 1024  # the firmware's JPEGs are tens of KiB
MAX_BODY_BYTES = MAX_IMAGE_BYTES + 16 * 1024  # the question and the multipart framing
MAX_ANSWER_TOKENS = 300
PATH = "/vision/explain"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"opendot vision token v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class VisionGrant:
    device_uuid: str
    session_id: str
    expires_at: float


def mint_token(secret: str, device_uuid: str, session_id: str, *, now: float | None = None) -> str:
    claims = {
        "p": "vision",
        "d": device_uuid,
        "s": session_id,
        "e": int((now or time.time()) + TOKEN_TTL_S),
    }
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(secret), body.encode(), hashlib.sha256).digest())
    return f"{TOKEN_PREFIX}.{body}.{signature}"


def check_token(secret: str, token: str, *, now: float | None = None) -> VisionGrant | str:
    """The grant in a valid token, or a sentence saying why it is refused."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return "The vision token is not one this runtime issued."
    expected = _b64(hmac.new(_key(secret), parts[1].encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[2]):
        return "The vision token is not one this runtime issued."
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        return "The vision token is malformed."
    if not isinstance(claims, dict) or claims.get("p") != "vision":
        return "The token is not a vision token."
    if not isinstance(claims.get("e"), int) or claims["e"] < (now or time.time()):
        return "The vision token has expired."
    return VisionGrant(str(claims.get("d")), str(claims.get("s")), float(claims["e"]))


def sniff_image(data: bytes) -> str | None:
    """The image's MIME type from its first bytes (only what vision models take)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


async def explain(
    image: bytes,
    question: str,
    vision: Mapping[str, Any],
    *,
    settings: ProviderSettings,
    keys: KeyResolver,
    resolver: Resolver | None = None,
) -> str:
    """Ask the agent's vision model about `image`; raises ProviderError on failure."""
    mime = sniff_image(image) or "image/jpeg"
    base = str(vision.get("baseUrl") or "").strip() or settings.openai_base_url
    url = endpoint(base, "chat_completions")
    allow_private = settings.allow_private_base_urls
    await vet_url(url, allow_private=allow_private, provider="vision", resolver=resolver)
    headers = {"Content-Type": "application/json"}
    secrets: tuple[str, ...] = ()
    name = str(vision.get("apiKeyName") or "").strip()
    key = keys.resolve(name, provider="vision") if name else None
    if key is not None:
        key.check_destination(url, "vision")
        headers["Authorization"] = f"Bearer {key.reveal()}"
        secrets = (key.reveal(),)
    data_url = f"data:{mime};base64,{base64.b64encode(image).decode()}"
    body = {
        "model": str(vision.get("model") or "gpt-4.1-mini"),
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": question or "What is in this photo?"},
                    {"type": "image_url", "image_url": {"url": data_url}},
                ],
            }
        ],
        "max_completion_tokens": MAX_ANSWER_TOKENS,
        "stream": False,
    }
    client = shared_client(allow_private=allow_private)
    request = client.build_request("POST", url, content=json.dumps(body).encode(), headers=headers)
    policy = CallPolicy(
        provider="vision", timeout_s=30.0, first_byte_timeout_s=20.0, max_retries=1, secrets=secrets
    )
    raw = await read_all(client, request, policy)
    try:
        answer = json.loads(raw)
        text = answer["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProviderError("vision", "the vision model's answer could not be read") from None
    return str(text or "").strip()
