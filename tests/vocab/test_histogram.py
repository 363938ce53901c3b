"""The cumulative histogram (vocab.histogram): counts only grow, bounds are "<=", read in the exported unit."""

from __future__ import annotations

import numpy as np
import pytest

from vocab.histogram import LATENCY_BOUNDS_S, Histogram


def test_counts_are_cumulative_and_never_forget() -> None:
    h = Histogram.seconds(unit=1e-9)  # observed in ns, read in s
    h.observe_many(np.array([400_000, 1_000_000, 3_000_000, 9_000_000_000], np.int64))  # 0.4 ms .. 9 s
    before = h.buckets()
    assert dict(before)["0.0005"] == 1 and dict(before)["0.001"] == 2  # a value on a bound is in its bucket
    assert dict(before)["5"] == 3 and dict(before)["+Inf"] == 4 == h.count
    assert h.sum == pytest.approx(9.0044)
    for _ in range(100):  # far more than any ring would keep: nothing falls out
        h.observe_many(np.full(1_000, 2_000_000, np.int64))
    after = dict(h.buckets())
    assert after["+Inf"] == 100_004 and all(after[le] >= dict(before)[le] for le in after)
    assert [le for le, _ in h.buckets()][:-1] == [f"{b:.6g}" for b in LATENCY_BOUNDS_S]


def test_single_observations_and_bad_bounds() -> None:
    h = Histogram.seconds()
    h.observe(0.25)
    h.observe(10.0)
    assert dict(h.buckets())["0.5"] == 1 and dict(h.buckets())["+Inf"] == 2 and h.sum == 10.25
    h.observe_many(np.array([], np.float64))
    assert h.count == 2
    with pytest.raises(ValueError):
        Histogram([1.0, 0.5])
