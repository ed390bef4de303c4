"""`POST /realtime/client-secret`: an ephemeral Realtime secret for a browser.

The original console's flow, unchanged on the wire: the platform API gives the
console a single-use `realtime` token and this URL; the console posts
`{token}`; the runtime consumes the token (internal verify, kind `realtime`),
builds the agent's session config (model included) and asks the provider's
`POST …/realtime/client_secrets` for a short-lived secret with the agent's key
(never sent to the browser). The answer is the provider's body, status 201; the
console reads `value` (or the beta `client_secret.value`) and connects to the
provider itself.

The provider call goes through the same guarded HTTP client as every provider
call (netguard at connect time, no redirects, no proxies, errors scrubbed of the
key). CORS is the runtime's one middleware (`runtime.app`): only the console
origins in OPENDOT_CORS_ORIGINS get the `Access-Control-Allow-Origin` answer
(and a preflight, which never reaches this handler, so no secret is minted for
it); any other origin gets a response its browser will not let the page read.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.api_client import ApiRefused, ApiUnavailable
from runtime.pipeline.errors import ConfigRefused, ProviderError
from runtime.protocol.jsontext import load_value
from runtime.providers.http import CallPolicy, read_all, shared_client
from runtime.providers.netguard import vet_url
from runtime.realtime.config import RealtimeConfig, is_speech_to_speech
from runtime.realtime.target import PROVIDER
from runtime.session.context import RuntimeContext

log = logging.getLogger("opendot.runtime.realtime")

MAX_BODY = 8 * 1024


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def client_secret(request: Request, *, ctx: RuntimeContext) -> Response:
    body = await request.body()
    token: Any = None
    if len(body) <= MAX_BODY:
        # Parsed (and its strings cleaned) like every browser message: a lone
        # surrogate must not reach the API call as an encoding error (a 500).
        parsed = load_value(body or b"{}")
        token = parsed.get("token") if isinstance(parsed, dict) else None
    if not isinstance(token, str) or not token.strip() or len(token) > 512:
        return _error(400, 'A realtime session token is required: {"token": "od_vt_…"}.')
    client_ip = request.client.host.removeprefix("::ffff:") if request.client else None
    try:
        grant = await ctx.api.verify_voice(
            token=token.strip(),
            ip_address=client_ip,
            user_agent=request.headers.get("user-agent"),
            kind="realtime",
        )
    except ApiRefused:
        return _error(401, "Realtime session token is invalid, expired, or already used.")
    except ApiUnavailable as exc:
        log.warning("realtime token verify unavailable: %s", exc)
        return _error(503, "Platform API unavailable.")
    if not is_speech_to_speech(grant.agent):
        return _error(409, "This agent is not a speech-to-speech agent.")
    config = RealtimeConfig.from_agent(grant.agent)
    try:
        target = ctx.realtime.target(config, grant.secrets, grant.user_id)
        await vet_url(
            target.base_url,
            allow_private=target.allow_private,
            provider=PROVIDER,
            what="realtime baseUrl",
            resolver=ctx.realtime.resolver,
        )
        client = shared_client(allow_private=target.allow_private)
        session = config.session(with_model=True)
        upstream = client.build_request(
            "POST",
            target.client_secrets_url,
            headers={**target.headers(), "Content-Type": "application/json"},
            content=json.dumps({"session": session.to_dict()}).encode(),
        )
        policy = CallPolicy(PROVIDER, timeout_s=15.0, max_retries=1, secrets=target.secrets)
        raw = await read_all(client, upstream, policy)
    except ConfigRefused as exc:
        return _error(400, f"The agent's realtime provider cannot be used: {_reason(exc)}")
    except ProviderError as exc:
        # The browser did nothing wrong: a refusal is the runtime's key or config (502).
        ctx.metrics.provider_errors.inc(stage="realtime_client_secret")
        return _error(502, f"The realtime provider refused: {_reason(exc)}")
    try:
        answer = json.loads(raw)
    except ValueError:
        return _error(502, "The realtime provider answered with something that is not JSON.")
    return JSONResponse(answer, status_code=201)


def _reason(exc: ProviderError) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(f"{exc.provider}: ") else text
