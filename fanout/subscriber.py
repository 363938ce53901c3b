"""Who a subscriber is to the hub, and what a flush gives (pure data, no I/O): ``Subscriber`` (a connection's
subscriptions, writability and the hub's bookkeeping of it) and ``FlushResult`` (per subscriber, its frames, in
parallel lists so a flush leaves no per-subscriber objects alive). ``fanout.hub`` makes and reads them and
re-exports ``Subscriber``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload


@dataclass(eq=False)
class Subscriber:
    id: int
    json: bool = False
    # channel -> subscribed locates
    channels: dict[str, set[int]] = field(default_factory=lambda: {"quotes": set(), "depth": set(), "trades": set(),
                                                                   "bars:1s": set(), "bars:1m": set(),
                                                                   "status": set()})
    writable: bool = True
    # the hub's bookkeeping: this subscriber's row, and per state channel its edges (locate -> edge index)
    slot: int = -1
    edges: dict[str, dict[int, int]] = field(default_factory=lambda: {"quotes": {}, "depth": {}})
    # trades channel, per locate: the last trade_seq this subscriber was sent (what its resume token names),
    # and after a resume's replay, the trade_seq up to which live prints are not sent again
    trade_seen: dict[int, int] = field(default_factory=dict)
    trade_floor: dict[int, int] = field(default_factory=dict)
    # bumped whenever what a resume token would say changes (subscriptions, trade_seen): tokens are cached by it
    version: int = 0
    period_ns: int = 0  # its conflation tier's flush period (``fanout.tiers``; 0: every flush)


class FlushResult(Sequence[tuple[Subscriber, Sequence[bytes | str]]]):
    """What a flush gives: per subscriber, its frames. Kept as parallel lists, and iterated as
    (subscriber, frames) pairs made on the fly, so a flush over tens of thousands of subscribers leaves
    no per-subscriber objects alive for the garbage collector to scan and promote."""

    __slots__ = ("subs", "frames", "single")

    def __init__(self, subs: list[Subscriber], frames: list[Any], single: bool) -> None:
        self.subs = subs
        self.frames = frames  # one frame each (single) or a list of frames each
        self.single = single

    def __len__(self) -> int:
        return len(self.subs)

    def __iter__(self) -> Iterator[tuple[Subscriber, Sequence[bytes | str]]]:
        if self.single:
            return zip(self.subs, map(_one, self.frames), strict=True)
        return zip(self.subs, self.frames, strict=True)

    @overload
    def __getitem__(self, i: int) -> tuple[Subscriber, Sequence[bytes | str]]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[Subscriber, Sequence[bytes | str]]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return list(self)[i]
        return self.subs[i], ([self.frames[i]] if self.single else self.frames[i])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _one(frame: bytes | str) -> tuple[bytes | str]:
    return (frame,)


EMPTY: FlushResult = FlushResult([], [], True)
