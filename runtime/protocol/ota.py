"""The `firmware` section of an OTA answer, read the way the firmware reads it.

`main/ota.cc` (`Ota::CheckVersion`) looks at `firmware` only when it is an
object with string `version` and `url`; it upgrades when the version is newer
by its comparison (shared/firmware/versions.py) or when `force` is the number
1. OpenDot adds `size` and `sha256`, which the firmware ignores and the
simulator checks before "installing". Pure: a value in, an offer, None (no
offer) or a `ProtocolError` out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.protocol.errors import ProtocolError
from shared.firmware.versions import firmware_key, is_newer

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FirmwareOffer:
    version: str
    url: str
    force: bool = False
    size: int | None = None
    sha256: str | None = None

    def wanted_by(self, current_version: str) -> bool:
        """Whether a Dot running `current_version` installs this (false where the real
        firmware would crash comparing: it cannot read its own version)."""
        if firmware_key(current_version) is None or firmware_key(self.version) is None:
            return False
        return self.force or is_newer(self.version, current_version)


def parse_firmware(section: object) -> FirmwareOffer | ProtocolError | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        return ProtocolError("firmware is not an object")
    version, url = section.get("version"), section.get("url")
    if not isinstance(version, str) or not isinstance(url, str):
        return ProtocolError("firmware needs string version and url")
    force = section.get("force")
    size = section.get("size")
    sha256 = section.get("sha256")
    return FirmwareOffer(
        version=version,
        url=url,
        # cJSON_IsNumber && valueint == 1: true/"1" do not count, 1.0 does.
        force=isinstance(force, int | float) and not isinstance(force, bool) and int(force) == 1,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None,
        sha256=sha256 if isinstance(sha256, str) and _SHA256.match(sha256) else None,
    )
