"""Following an offered firmware upgrade, as a Dot does, with the checks it cannot skip.

The firmware (`Ota::Upgrade`) GETs the URL, needs a 200 with a Content-Length,
streams the image into the other OTA slot, and lets `esp_ota_end` refuse a
corrupt image; after a good image it reboots and reports the new version in its
next OTA request. The simulator does the same with what the answer tells it:
status and length, the size and SHA-256 of the release, and the version written
inside the image (what a rebooted Dot would report). A bad download is
reported and not installed; the caller asks OTA again, as the Dot's next boot
would, and so retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from runtime.protocol.ota import FirmwareOffer
from shared.firmware.image import HEADER_BYTES, read_app_image

MAX_IMAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Installed:
    version: str
    size: int


async def download_and_check(
    http: httpx.AsyncClient, offer: FirmwareOffer, report: Callable[[str], None]
) -> Installed | None:
    """The image's version if the download is whole and genuine; None (reported) if not."""
    try:
        async with http.stream("GET", offer.url) as response:
            if response.status_code != 200:
                report(f"firmware download refused: HTTP {response.status_code}; not installed")
                return None
            length = response.headers.get("content-length", "")
            if not length.isdigit() or int(length) == 0:
                report("firmware download has no Content-Length; not installed")
                return None
            digest = hashlib.sha256()
            head = b""
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    report("firmware download is larger than any OTA slot; not installed")
                    return None
                if len(head) < HEADER_BYTES:
                    head += chunk[: HEADER_BYTES - len(head)]
                digest.update(chunk)
    except httpx.HTTPError as exc:
        report(f"firmware download failed: {type(exc).__name__}; not installed")
        return None
    problems = []
    if size != int(length):
        problems.append(f"got {size} of {length} bytes")
    if offer.size is not None and size != offer.size:
        problems.append(f"size {size}, expected {offer.size}")
    if offer.sha256 is not None and digest.hexdigest() != offer.sha256:
        problems.append("SHA-256 does not match")
    image = read_app_image(head)
    if isinstance(image, str):
        problems.append(image.rstrip("."))
    if problems:
        report(f"firmware download corrupted ({'; '.join(problems)}); not installed")
        return None
    assert not isinstance(image, str)
    return Installed(image.version, size)
