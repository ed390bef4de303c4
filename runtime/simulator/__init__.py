"""A simulated Dot device that speaks the xiaozhi firmware's protocol.

`device.SimulatedDevice` is the library the CLI (`opendot device simulate`),
the demo (`opendot demo`), tests and benchmarks drive: OTA bootstrap and
activation (`ota`), a token store (`identity`), the `/ws` conversation with
Opus audio both ways. Nothing here is imported by the runtime itself.
"""
