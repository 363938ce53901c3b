"""The node's own trade-print history for resume (pure): every print its flushes passed, bounded.

Bounds: a print is kept at most ``max_age_ns`` (by the node's clock when it was recorded) and, per symbol, only
the newest ``per_symbol`` count (``window`` applies both); all symbols together share one ring of ``capacity``
prints (the memory bound: ~80 bytes a print). A symbol's history is therefore the last 60 s or 10,000 prints
by default, unless the whole market printed more than ``capacity`` prints in that time.

In Redis mode a node also reads the history the publisher keeps in Redis (``normalize.replicas.redis``), which
any node can read; this ring covers what the node itself delivered since.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from normalize.trades import TradePrints

I64 = npt.NDArray[np.int64]


class TradeHistory:
    def __init__(self, capacity: int = 262_144, *, per_symbol: int = 10_000, max_age_ns: int = 60_000_000_000) -> None:
        if capacity < 1 or per_symbol < 1 or max_age_ns <= 0:
            raise ValueError("trade history bounds must be positive")
        self.capacity = capacity
        self.per_symbol = per_symbol
        self.max_age_ns = max_age_ns
        self.total = 0
        self._cols = {name: np.zeros(capacity, np.int64) for name in (*TradePrints._fields, "recorded")}
        # the ring grouped by symbol, for the ring as it was at ``total``: a reconnect storm resumes thousands of
        # clients between two flushes, and sorting the whole ring for each was most of a node's time in one
        self._grouped: tuple[int, I64, I64] | None = None

    def record(self, prints: TradePrints, now_ns: int) -> None:
        """Append one flush's prints (in feed order)."""
        n = len(prints.locate)
        if not n:
            return
        cap = self.capacity
        if n > cap:
            prints = TradePrints(*(c[-cap:] for c in prints))
            self.total += n - cap
            n = cap
        idx = (self.total + np.arange(n)) % cap
        for name, col in zip(TradePrints._fields, prints, strict=True):
            self._cols[name][idx] = col
        self._cols["recorded"][idx] = now_ns
        self.total += n

    def window(self, locate: int, after: int, upto: int, now_ns: int) -> TradePrints:
        """This symbol's prints with trade_seq in (after, upto] still inside the bounds, in trade_seq order."""
        return self.windows({locate: (after, upto)}, now_ns)[locate]

    def windows(self, wanted: dict[int, tuple[int, int]], now_ns: int) -> dict[int, TradePrints]:
        """``window`` for many symbols (locate -> (after, upto)) in one pass over the ring."""
        if not wanted:
            return {}
        cols = self._cols
        by_symbol, sorted_locs = self._by_symbol()
        out = {}
        for loc, (after, upto) in wanted.items():
            lo, hi = np.searchsorted(sorted_locs, [loc, loc + 1])
            mine = by_symbol[max(int(lo), int(hi) - self.per_symbol):int(hi)]
            tseq = cols["trade_seq"][mine]
            keep = mine[(tseq > after) & (tseq <= upto) & (cols["recorded"][mine] >= now_ns - self.max_age_ns)]
            keep = keep[np.argsort(cols["trade_seq"][keep], kind="stable")]
            out[loc] = TradePrints(*(cols[name][keep] for name in TradePrints._fields))
        return out

    def _by_symbol(self) -> tuple[I64, I64]:
        """The ring's slots grouped by locate, oldest first inside a group, and their locates; sorted once per
        ``record`` (the ring changes only there)."""
        if self._grouped is None or self._grouped[0] != self.total:
            held = min(self.total, self.capacity)
            order = (self.total - held + np.arange(held)) % self.capacity  # oldest first
            by_symbol = order[np.argsort(self._cols["locate"][order], kind="stable")]
            self._grouped = (self.total, by_symbol, self._cols["locate"][by_symbol])
        return self._grouped[1], self._grouped[2]
