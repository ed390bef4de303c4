"""Who the simulated device is, and where it keeps its token.

Like the firmware's NVS: a MAC address (Device-Id), a UUID (Client-Id), an
optional eFuse serial number, the board name and firmware version, plus
whatever the OTA answer put under `websocket` (url, token, version). Stored as
`<dir>/<mac with dashes>.json` (dashes, not colons, so the name is valid on
every filesystem); the directory defaults to `OPENDOT_DATA_DIR/devices`.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_BOARD = "bread-compact-wifi"
DEFAULT_FIRMWARE = "1.8.2"


def default_state_dir() -> Path:
    """`OPENDOT_DATA_DIR/devices`: beside the database the devices are paired with."""
    from shared.local import LocalSettings

    return LocalSettings().devices_dir


def random_mac() -> str:
    # Locally administered, unicast: never collides with a real vendor's MAC.
    first = (secrets.randbelow(64) << 2) | 0x02
    rest = [secrets.randbelow(256) for _ in range(5)]
    return ":".join(f"{b:02x}" for b in [first, *rest])


@dataclass
class DeviceIdentity:
    mac: str
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial_number: str | None = None
    board: str = DEFAULT_BOARD
    firmware_version: str = DEFAULT_FIRMWARE
    websocket: dict[str, Any] = field(default_factory=dict)  # what OTA told us to store

    @property
    def token(self) -> str | None:
        token = self.websocket.get("token")
        return token if isinstance(token, str) and token else None

    @property
    def user_agent(self) -> str:
        return f"{self.board}/{self.firmware_version}"

    @property
    def activation_version(self) -> str:
        return "2" if self.serial_number else "1"

    def ota_headers(self) -> dict[str, str]:
        """The headers of the firmware's OTA request (`main/ota.cc`)."""
        headers = {
            "Activation-Version": self.activation_version,
            "Device-Id": self.mac,
            "Client-Id": self.client_id,
            "User-Agent": self.user_agent,
            "Accept-Language": "en-US",
            "Content-Type": "application/json",
        }
        if self.serial_number:
            headers["Serial-Number"] = self.serial_number
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def system_info(self) -> dict[str, Any]:
        """The firmware's system-info JSON body (`Board::GetSystemInfoJson`)."""
        return {
            "version": 2,
            "language": "en-US",
            "flash_size": 16 * 1024 * 1024,
            "minimum_free_heap_size": 8_380_000,
            "mac_address": self.mac,
            "uuid": self.client_id,
            "chip_model_name": "esp32s3",
            "chip_info": {"model": 9, "cores": 2, "revision": 2, "features": 18},
            "application": {
                "name": "xiaozhi",
                "version": self.firmware_version,
                "compile_time": "Nov 25 2026T10:00:00Z",
                "idf_version": "v5.4.1",
                "elf_sha256": "0" * 64,
            },
            "partition_table": [
                {"label": "nvs", "type": 1, "subtype": 2, "address": 36864, "size": 16384},
                {"label": "otadata", "type": 1, "subtype": 0, "address": 53248, "size": 8192},
                {"label": "ota_0", "type": 0, "subtype": 16, "address": 1048576, "size": 6291456},
                {"label": "ota_1", "type": 0, "subtype": 17, "address": 7340032, "size": 6291456},
            ],
            "ota": {"label": "ota_0"},
            "display": {"monochrome": False, "width": 240, "height": 240},
            "board": {
                "type": self.board,
                "name": self.board,
                "ssid": "opendot-sim",
                "rssi": -48,
                "channel": 6,
                "ip": "127.0.0.1",
                "mac": self.mac,
            },
        }


class DeviceStore:
    """JSON files of device identities, one per MAC."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_state_dir()

    def path_for(self, mac: str) -> Path:
        return self.directory / f"{mac.lower().replace(':', '-')}.json"

    def load(self, mac: str) -> DeviceIdentity | None:
        path = self.path_for(mac)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        known = set(DeviceIdentity.__dataclass_fields__)
        return DeviceIdentity(**{k: v for k, v in data.items() if k in known})

    def save(self, identity: DeviceIdentity) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(identity.mac)
        tmp = path.with_suffix(".tmp")
        # The token is a credential: owner-only permissions from the first byte.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(identity), handle, indent=2)
        tmp.replace(path)
        return path

    def load_or_create(self, mac: str | None = None) -> DeviceIdentity:
        """The stored device for `mac`, or a new identity (not saved yet).

        Without a MAC: the only stored device if there is exactly one, else a
        new random one."""
        if mac is None:
            stored = sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []
            if len(stored) == 1:
                mac = stored[0].stem.replace("-", ":")
            else:
                return DeviceIdentity(mac=random_mac())
        return self.load(mac) or DeviceIdentity(mac=mac.lower())
