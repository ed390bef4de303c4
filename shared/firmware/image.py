"""What an ESP32 application image says about itself (ESP-IDF `esp_app_format.h`).

An app image starts with a 24-byte image header (magic 0xE9) and an 8-byte
segment header, then the app description: magic word 0xABCD5432 and, 16 bytes
on, the 32-byte version string the running firmware reports in its OTA
requests (`application.version`). So the API can tell, before any Dot sees a
file, that it is an application image (not a merged flash image, whose first
part is the bootloader) and that its version is the release's: a Dot that
installs an image claiming another version would report that version forever
and never complete its rollout step.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

IMAGE_MAGIC = 0xE9
APP_DESC_MAGIC = 0xABCD5432
_APP_DESC_OFFSET = 24 + 8
_VERSION_OFFSET = _APP_DESC_OFFSET + 16
_PROJECT_OFFSET = _VERSION_OFFSET + 32
HEADER_BYTES = _PROJECT_OFFSET + 32  # enough to read magic, version and project name


@dataclass(frozen=True, slots=True)
class AppImage:
    version: str
    project_name: str


def _cstr(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def read_app_image(head: bytes) -> AppImage | str:
    """The app description of an image starting with `head`, or why it is not one."""
    if len(head) < HEADER_BYTES or head[0] != IMAGE_MAGIC:
        return "This is not an ESP32 firmware image (it does not start with byte 0xE9)."
    (magic,) = struct.unpack_from("<I", head, _APP_DESC_OFFSET)
    if magic != APP_DESC_MAGIC:
        return (
            "This is not an application image (no app description after the first segment): "
            "upload the app .bin the build writes, not the merged flash image."
        )
    return AppImage(
        version=_cstr(head[_VERSION_OFFSET:_PROJECT_OFFSET]),
        project_name=_cstr(head[_PROJECT_OFFSET:HEADER_BYTES]),
    )


def build_app_image(version: str, size: int, *, project: str = "xiaozhi", fill: int = 0) -> bytes:
    """A minimal well-formed app image of `size` bytes (the simulator and tests use it)."""
    header = bytes([IMAGE_MAGIC, 1, 2, 0x2F]) + b"\x00" * 20
    segment = struct.pack("<II", 0x3C000020, 256)
    desc = struct.pack("<IIII", APP_DESC_MAGIC, 0, 0, 0)
    desc += version.encode()[:31].ljust(32, b"\x00") + project.encode()[:31].ljust(32, b"\x00")
    head = header + segment + desc
    if size < len(head):
        raise ValueError(f"an app image is at least {len(head)} bytes")
    body = bytes((fill + i) % 251 for i in range(size - len(head)))
    return head + body


if __name__ == "__main__":  # `python -m shared.firmware.image 1.1.0 out.bin`: an image to try
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m shared.firmware.image VERSION OUT.bin")
    with open(sys.argv[2], "wb") as out:
        out.write(build_app_image(sys.argv[1], 256 * 1024))
    print(f"wrote {sys.argv[2]}: a 256 KiB app image that says it is version {sys.argv[1]}")
