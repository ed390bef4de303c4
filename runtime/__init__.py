"""The long-lived voice runtime: device and browser sockets, OTA, the speech pipeline."""
