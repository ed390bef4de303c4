"""Code shared by the platform API (`functions`) and the voice runtime (`runtime`)."""

__version__ = "0.1.0"
