"""`GET /ota/firmware/<token>`: release files from the local directory, for Dots.

Only with OPENDOT_FIRMWARE_STORAGE=local (`make up`); in production the OTA
answer points at presigned S3 URLs instead. The token is the API's signed
grant (shared/firmware/links.py): one file, until it expires. Range requests
work (Starlette's FileResponse), so an interrupted download can resume. When a
response carrying the file's last byte has gone out completely, the runtime
tells the API which Dot of which rollout downloaded it; the Dot's next OTA
request says whether it installed it.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from runtime.api_client import ApiError, InternalApi
from runtime.settings import RuntimeSettings
from shared.firmware.links import DownloadGrant, link_key, verify
from shared.internal_api import FirmwareDownloaded, Ok

log = logging.getLogger("opendot.runtime.firmware")
_SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def _reaches_end(range_header: str | None, size: int) -> bool:
    """Whether the response carries the file's last byte (the whole file, or its tail)."""
    if not range_header:
        return True
    match = _SINGLE_RANGE.match(range_header)
    if match is None:
        return False  # several ranges: not how a Dot downloads
    start, end = match.groups()
    return not end or not start or int(end) >= size - 1


class FirmwareFiles:
    def __init__(self, settings: RuntimeSettings, api: InternalApi) -> None:
        self.enabled = settings.firmware_storage == "local"
        self.directory = settings.firmware_dir
        self.key = link_key(settings.runtime_internal_secret.get_secret_value())
        self.api = api

    async def serve(self, request: Request) -> Response:
        grant = verify(self.key, request.path_params["token"], time.time())
        if not self.enabled or grant is None:
            return JSONResponse({"error": "Not found."}, status_code=404)
        path = self.directory / f"{grant.release_id}.bin"
        try:
            size = path.stat().st_size
        except OSError:
            return JSONResponse({"error": "Not found."}, status_code=404)
        report = None
        if (
            request.method == "GET"
            and grant.rollout_id
            and _reaches_end(request.headers.get("range"), size)
        ):
            report = BackgroundTask(self._report, grant)
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=f"firmware-{grant.release_id}.bin",
            background=report,
        )

    async def _report(self, grant: DownloadGrant) -> None:
        try:
            await self.api.call(
                "/firmware/downloaded",
                FirmwareDownloaded(
                    rollout_id=str(grant.rollout_id), device_id=str(grant.device_id)
                ),
                Ok,
            )
        except ApiError as exc:  # progress is informative; the Dot's next OTA tells the rest
            log.warning("could not record a firmware download: %s", exc)
