"""The simulator's exception tree."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of everything the simulator raises on purpose."""


class OtaError(SimulatorError):
    """The OTA endpoint answered with an error or something unusable."""


class ActivationTimeout(SimulatorError):
    """Nobody claimed the activation code in time."""


class AuthenticationFailed(SimulatorError):
    """The runtime refused the device token (HTTP 401 on the upgrade)."""


class HandshakeError(SimulatorError):
    """No valid server hello within the firmware's 10 s window."""


class AudioInputError(SimulatorError):
    """The audio to send could not be read or synthesised."""


class PlatformError(SimulatorError):
    """A platform API call of the demo failed (sign-in, claim, bind)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status; None when the API could not be reached
