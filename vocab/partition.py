"""The partition function: CRC-32 of a key, modulo the number of partitions.

One definition for every place that spreads keys over partitions (symbols over ingest workers and Redis
channels, users over ledger shards and execution streams). CRC-32, not ``hash()``: the answer must be the
same in every process and every release, because different processes route the same key independently.
"""

from __future__ import annotations

import zlib


def crc32_partition(key: str, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` (0 .. partitions - 1)."""
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    return zlib.crc32(key.encode()) % partitions
