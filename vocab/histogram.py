"""A cumulative histogram: what Prometheus' ``rate()`` and ``histogram_quantile()`` need.

Counts only grow (a bucket is never emptied, nothing is forgotten), so a scrape at any time gives the totals
since the process started. Observations are recorded in the unit the caller measures in (nanoseconds on the
fan-out's hot path: integers, no float per sample); ``scale`` converts the bounds and the sum to the exported
base unit (seconds) when read. Pure; one ``np.searchsorted`` and one ``np.bincount`` per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# upper bounds in seconds: sub-millisecond to seconds (latencies on loopback to a congested WAN)
LATENCY_BOUNDS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Histogram:
    """Buckets with upper bounds ``bounds`` (in the observations' unit, increasing) and a +Inf bucket.

    ``scale``: what one observed unit is in the exported base unit (1e-9: observations in ns, read in s).
    """

    def __init__(self, bounds: Sequence[float], *, scale: float = 1.0) -> None:
        if not bounds or any(b >= c for b, c in zip(bounds, bounds[1:], strict=False)):
            raise ValueError("histogram bounds must be given in increasing order")
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.scale = scale
        self.counts: npt.NDArray[np.int64] = np.zeros(len(bounds) + 1, np.int64)  # per bucket, +Inf last
        self.total = 0.0  # sum of observations, in the observed unit

    @classmethod
    def seconds(cls, bounds_s: Sequence[float] = LATENCY_BOUNDS_S, *, unit: float = 1.0) -> Histogram:
        """Bounds given in seconds, observations in ``unit`` seconds (1e-9: nanoseconds)."""
        return cls([b / unit for b in bounds_s], scale=unit)

    def observe(self, value: float) -> None:
        self.counts[int(np.searchsorted(self.bounds, value, side="left"))] += 1
        self.total += value

    def observe_many(self, values: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> None:
        if len(values) == 0:
            return
        # side="left": a value equal to a bound falls in that bound's bucket (Prometheus' le is "<=")
        idx = np.searchsorted(self.bounds, values, side="left")
        self.counts += np.bincount(idx, minlength=len(self.counts))
        self.total += float(values.sum())

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def buckets(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs in the exported unit, ending with +Inf: a HistogramMetricFamily's."""
        cumulative = np.cumsum(self.counts)
        les = [f"{b * self.scale:.6g}" for b in self.bounds] + ["+Inf"]
        return [(le, int(c)) for le, c in zip(les, cumulative, strict=True)]

    @property
    def sum(self) -> float:
        """The sum of observations in the exported unit."""
        return self.total * self.scale
