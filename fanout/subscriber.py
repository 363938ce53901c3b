"""Who a subscriber is to the hub, and what a flush gives (pure data, no I/O): ``Subscriber`` (a connection's
subscriptions, writability and the hub's bookkeeping of it) and ``FlushResult`` (per subscriber, its frames, in
parallel lists so a flush leaves no per-subscriber objects alive). ``fanout.hub`` makes and reads them and
re-exports ``Subscriber``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast, overload

NO_CHANNELS = cast(dict[str, set[int]], MappingProxyType({}))  # read-only: ``stream`` makes a subscriber its own


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connection as the hub sees it. Slots, and a channel's structure only while it holds a locate: tens of
    thousands of these live at once, most watching a few symbols of one channel (benchmarks/RESULTS.md, "Memory per
    connection (item 3)")."""

    id: int
    json: bool = False
    # stream channel (trades, bars:1s, bars:1m, status) -> its subscribed locates; a channel only while non-empty,
    # and while there is none, one empty mapping shared by every subscriber (most watch quotes alone)
    channels: dict[str, set[int]] = field(default_factory=lambda: NO_CHANNELS)
    writable: bool = True
    # the hub's bookkeeping: this subscriber's row, and per state channel (quotes, depth) its edges (locate -> edge
    # index), which are also its subscribed locates there (no second set); a channel only while non-empty
    slot: int = -1
    edges: dict[str, dict[int, int]] = field(default_factory=dict)
    # trades channel (``trade_seen``, ``trade_floor`` below; None until first used)
    _seen: dict[int, int] | None = field(default=None, init=False, repr=False)
    _floor: dict[int, int] | None = field(default=None, init=False, repr=False)
    # bumped whenever what a resume token would say changes (subscriptions, trade_seen): tokens are cached by it
    version: int = 0
    period_ns: int = 0  # its conflation tier's flush period (``fanout.tiers``; 0: every flush)

    @property
    def trade_seen(self) -> dict[int, int]:
        """Trades channel, per locate: the last trade_seq this subscriber was sent (what its resume token names)."""
        if self._seen is None:
            self._seen = {}
        return self._seen

    @property
    def trade_floor(self) -> dict[int, int]:
        """Trades channel, per locate, after a resume's replay: the trade_seq up to which live prints are not sent
        again."""
        if self._floor is None:
            self._floor = {}
        return self._floor

    def watching(self, channel: str) -> Collection[int]:
        """The locates subscribed on ``channel`` (empty when none); read-only."""
        return self.edges.get(channel) or self.channels.get(channel) or NO_LOCATES

    def locates(self) -> set[int]:
        """Every locate subscribed, on any channel."""
        return set().union(*self.edges.values(), *self.channels.values())

    def stream(self, channel: str) -> set[int]:
        """A stream channel's locates, to add to (made on first use; ``settle`` drops it when emptied)."""
        mine = self.channels.get(channel)
        if mine is None:
            if self.channels is NO_CHANNELS:
                self.channels = {}
            mine = self.channels[channel] = set()
        return mine

    def settle(self, channel: str) -> None:
        """Forget ``channel``'s structures once nothing is subscribed on it."""
        if not self.channels.get(channel, True):
            del self.channels[channel]
            if not self.channels:
                self.channels = NO_CHANNELS
        if not self.edges.get(channel, True):
            del self.edges[channel]


NO_LOCATES: frozenset[int] = frozenset()


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
