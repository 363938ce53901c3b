"""Bars on the wire (pure): ``Bar`` <-> the protocol's ``pb.Bar``, and the conflation every hop applies.

The fan-out's channels and the Redis replica both send a bar's newest state rather than every state: per
(interval, symbol), every ``final`` and ``revised`` bar in order, and of the ``update``s only the newest, and
only if its bar did not close after it (the final says everything the update did).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from tickfan_proto import stream_pb2 as pb

from .bar_types import MINUTE, SECOND, UPDATE, Bar

INTERVAL_NAME = {SECOND: "1s", MINUTE: "1m"}
INTERVAL_NS = {name: ns for ns, name in INTERVAL_NAME.items()}
P = TypeVar("P")


def bar_to_pb(bar: Bar, symbol: str) -> pb.Bar:
    vwap = bar.vwap_price(4)
    return pb.Bar(symbol=symbol, interval=INTERVAL_NAME[bar.interval_ns], start_time_ns=bar.start_ns,
                  open=bar.open, high=bar.high, low=bar.low, close=bar.close, volume=bar.volume, trades=bar.trades,
                  vwap=vwap or 0, notional=bar.notional, state=bar.state, version=bar.version)


def bar_from_pb(m: pb.Bar, locate: int) -> Bar | None:
    """The bar a message carries (None: an interval or state this side does not know)."""
    width = INTERVAL_NS.get(m.interval)
    if width is None or m.state not in ("update", "final", "revised"):
        return None
    return Bar(locate, width, m.start_time_ns, m.open, m.high, m.low, m.close, m.volume, m.trades, m.notional,
               m.version, m.state)


def conflate(items: Sequence[tuple[P, Bar]]) -> tuple[list[tuple[P, Bar]], int]:
    """One (interval, symbol)'s bars in emission order, each with a tag (``P``): the closed ones in order plus
    the newest update if its bar is still open. Returns (kept, updates dropped)."""
    kept: list[tuple[P, Bar]] = []
    update: tuple[P, Bar] | None = None
    dropped = 0
    for tag, b in items:
        if b.state == UPDATE:
            if update is not None:
                dropped += 1
            update = (tag, b)
        else:
            if update is not None and update[1].start_ns == b.start_ns:
                dropped += 1
                update = None
            kept.append((tag, b))
    if update is not None:
        kept.append(update)
    return kept, dropped
