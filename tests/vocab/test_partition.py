"""The partition function and the Redis names built on it: stable across processes and releases."""

from __future__ import annotations

import zlib

import pytest

from vocab import keys
from vocab.partition import crc32_partition


def test_crc32_partition_is_stable_and_spreads() -> None:
    assert crc32_partition("AAPL", 16) == zlib.crc32(b"AAPL") % 16  # the published rule, not hash()
    assert {crc32_partition(f"S{i}", 4) for i in range(100)} == {0, 1, 2, 3}
    with pytest.raises(ValueError):
        crc32_partition("AAPL", 0)


def test_redis_names() -> None:
    assert keys.quote_key("TSLA") == "quote:TSLA"
    # the partition's slot tag: {3.N}, the same on its quotes and bars channels
    assert keys.quotes_channel(3).startswith("tickfan:quotes:{3.") and keys.quotes_channel(3).endswith("}")
    assert keys.bars_channel(3) == "tickfan:bars:" + keys.partition_tag(3)
    assert keys.order_channel("alice") == "tickfan:orders:alice"
    assert keys.order_channel("alice").startswith(keys.ORDER_CHANNEL_PREFIX)
    assert keys.exec_stream(2) == "tickfan:exec:2" and keys.EXEC_DEAD == "tickfan:exec:dead"
