"""Audio plumbing shared by the runtime, the simulator and the providers.

PCM between stages is always PCM16 little-endian mono in `bytes`; every
function states the sample rate it expects. Native codec state is freed by an
explicit `close()` (the original runtime leaked one libopus decoder per turn).
"""
