"""The OTA answer's `firmware` section and the firmware's version comparison."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.protocol.errors import ProtocolError
from runtime.protocol.ota import FirmwareOffer, parse_firmware
from shared.firmware.versions import firmware_key, is_newer, release_key

SHA = "ab" * 32


def test_offers_as_the_firmware_reads_them() -> None:
    assert parse_firmware(None) is None
    assert isinstance(parse_firmware([1]), ProtocolError)
    assert isinstance(parse_firmware({"version": "1.1.0"}), ProtocolError)
    assert isinstance(parse_firmware({"version": 1, "url": "http://x"}), ProtocolError)
    offer = parse_firmware(
        {"version": "1.1.0", "url": "http://x/f", "size": 10, "sha256": SHA, "extra": 1}
    )
    assert offer == FirmwareOffer("1.1.0", "http://x/f", False, 10, SHA)
    for force, expected in ((1, True), (1.0, True), (True, False), ("1", False), (0, False)):
        parsed = parse_firmware({"version": "1", "url": "u", "force": force})
        assert isinstance(parsed, FirmwareOffer) and parsed.force is expected
    odd = parse_firmware({"version": "1", "url": "u", "size": True, "sha256": "XYZ"})
    assert isinstance(odd, FirmwareOffer) and odd.size is None and odd.sha256 is None
    assert parse_firmware({"version": "1", "url": "u", "size": 0}) == FirmwareOffer("1", "u")


def test_which_offers_a_dot_takes() -> None:
    offer = FirmwareOffer("1.1.0", "u")
    assert offer.wanted_by("1.0.9") and not offer.wanted_by("1.1.0")
    assert not offer.wanted_by("1.2") and not offer.wanted_by("v1.0")
    assert FirmwareOffer("1.0.0", "u", force=True).wanted_by("1.2.0")
    assert not FirmwareOffer("x", "u", force=True).wanted_by("1.2.0")


@pytest.mark.parametrize(
    ("version", "key"),
    [
        ("1.2.3", (1, 2, 3)),
        ("1.10", (1, 10)),
        ("1.", (1,)),
        (" 2.+3.-1", (2, 3, -1)),
        ("1.2.3-rc1", (1, 2, 3)),
        ("1.0.0-beta.2", (1, 0, 0, 2)),
        ("v1.2", None),
        ("1..2", None),
        ("", None),
        (None, None),
        ("99999999999", None),
    ],
)
def test_firmware_key_is_stoi_per_part(version: str | None, key: tuple[int, ...] | None) -> None:
    assert firmware_key(version) == key


def test_newer_as_the_firmware_decides() -> None:
    assert is_newer("1.10", "1.9") and is_newer("1.0.0", "1.0") and is_newer("2", "1.99.99")
    assert not is_newer("1.2.3", "1.2.3-rc1") and not is_newer("1.0", "1.0.0")
    assert not is_newer("1.0", "v0.9")
    assert release_key("1.02.3") == (1, 2, 3) and release_key("1.2.3-rc1") is None


@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=6),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=6),
)
def test_comparison_matches_the_firmware_loop(a: list[int], b: list[int]) -> None:
    """Ota::IsNewVersionAvailable, transcribed, against tuple order (and so int[] order)."""

    def firmware(current: list[int], newer: list[int]) -> bool:
        for x, y in zip(current, newer, strict=False):
            if y > x:
                return True
            if y < x:
                return False
        return len(newer) > len(current)

    current, offered = ".".join(map(str, a)), ".".join(map(str, b))
    assert is_newer(offered, current) == firmware(a, b)
