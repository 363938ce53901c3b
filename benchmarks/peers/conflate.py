"""What the feed publishes to a peer, and when: per watched symbol the newest version, at most once a period.

The peers' feed applies every packet to its books (``seq[locate]`` moves with each change of a quote). It
asks ``due(now)`` and, when due, ``take(seq, high, now)``: the watched locates whose version moved since the
last take (each once, however often it moved: the newest state is what is built from the books then).

- ``period_s == 0``: due always; the feed takes after every packet, so every change is published (the
  peers as the fan-out servers they are, conflation theirs to do, which they don't);
- ``period_s > 0``: the conflating publisher a user would put in front of such a server: due once a period,
  on a fixed schedule from the first take (a take that comes late does not shift it; one so late that a
  whole period was missed starts it again from now). With ``--flush-ms`` it is tickfan's bound: no change
  waits longer than a period (plus one feed-loop turn) to be published.

Pure: numpy arrays and the caller's clock in, locates out; no I/O.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class Conflator:
    def __init__(self, watched: npt.NDArray[np.bool_], period_s: float = 0.0) -> None:
        if period_s < 0:
            raise ValueError(f"period must not be negative, not {period_s}")
        self.watched = watched
        self.period_s = period_s
        # version last published, per locate: none yet, so a symbol's first change is published
        self.published: npt.NDArray[np.int64] = np.zeros(len(watched), np.int64)
        self.next_at: float | None = None  # None: the first take is due at once
        self.takes = 0

    @property
    def conflating(self) -> bool:
        return self.period_s > 0

    def due(self, now: float) -> bool:
        return not self.conflating or self.next_at is None or now >= self.next_at

    def take(self, seq: npt.NDArray[np.int64], high: int, now: float) -> npt.NDArray[np.int64]:
        """Watched locates below ``high`` whose version moved since the last take (and remember the new
        versions); schedules the next take."""
        high = min(high, len(self.published), len(seq))
        current = seq[:high]
        published = self.published[:high]
        moved = np.flatnonzero((current != published) & self.watched[:high])
        published[moved] = current[moved]
        self.takes += 1
        if self.conflating:
            nxt = (now if self.next_at is None else self.next_at) + self.period_s
            self.next_at = nxt if nxt > now else now + self.period_s
        return moved
