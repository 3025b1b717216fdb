"""Measurement: timing, memory (NVML, allocator, XLA, host RSS), FLOPs, environment."""
