"""The ``bars:1s`` and ``bars:1m`` channels (pure): a node's bar emissions to each subscriber, in order.

Per flush the hub reads what the bar source emitted since its cursor for the symbols someone watches
(``BarSource.bars_since_watched``: the others' open bars never become rows) and, per (interval, symbol),
every ``final`` and ``revised`` bar in order plus only the newest ``update`` of the open bar (conflated: a
bar that closed in the same flush needs no update). Each kept bar is encoded once (protobuf entry and
JSON) and the bytes are shared by every subscriber.

Per subscriber and (interval, symbol) the channel remembers the newest bar start it sent, and never sends an
``update`` or ``final`` older than that (a ``revised`` is a change to a bar the client may hold: it is always
sent). Subscribing sends a ``BarBatch`` with ``snapshot: true``: the symbol's latest closed bar and its open
bar (``history(loc, interval, 2)``), and emissions logged before that snapshot are skipped for that
subscriber, so it sees each bar's newest state and never an older one. With the latest closed bar in the
snapshot, a client that fetched ``GET /v1/bars`` just before subscribing still receives the final state of
the bar that was open in its history.

A subscriber that cannot be written to keeps what it is owed per (interval, symbol): the closed bars in
order (never dropped) and the newest update; it gets them when it drains (or is dropped as slow).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from normalize.bar_feed import BarSource
from normalize.bar_types import INTERVALS, MAX_LOCATES, MINUTE, REVISED, SECOND, UPDATE, Bar
from normalize.bar_wire import bar_to_pb, conflate
from normalize.source import BookSource

from .encode import TAG_BARS, entry, to_json, varint, wrap, wrap_json

BAR_CHANNELS = {"bars:1s": SECOND, "bars:1m": MINUTE}
Key = tuple[int, int]  # (interval ns, locate)


def _trailer(send_time_ns: int, snapshot: bool) -> bytes:
    out = b"\x10\x01" if snapshot else b""  # BarBatch.snapshot (field 2)
    return out + (b"\x18" + varint(send_time_ns) if send_time_ns > 0 else b"")  # BarBatch.send_time_ns (3)


def _json_extra(send_time_ns: int, snapshot: bool) -> str:
    return (',"snapshot":true' if snapshot else "") + (f',"sendTimeNs":"{send_time_ns}"' if send_time_ns > 0 else "")


@dataclass(eq=False)
class _Encoded:
    bar: Bar
    binary: bytes
    json: str


@dataclass
class BarStats:
    bars_encoded: int = 0
    bars_sent: int = 0
    bars_lost: int = 0  # emissions that left the source's log before a flush read them
    updates_conflated: int = 0
    older_skipped: int = 0  # a bar older than one the subscriber already has (not sent)


class Watcher(Hashable, Protocol):
    """A subscriber as this channel sees it (``fanout.hub.Subscriber``)."""

    writable: bool
    json: bool


@dataclass(eq=False)
class _Watch:
    """One subscriber's state on one (interval, symbol)."""

    newest: int = -(1 << 63)  # the newest bar start sent
    skip_before: int = 0  # log positions before this were covered by the snapshot
    owed: list[_Encoded] = field(default_factory=list)  # while the subscriber cannot be written to


class BarChannel:
    def __init__(self, books: BookSource, source: BarSource | None) -> None:
        self.books = books
        self.source = source
        self.cursor = source.bars_total if source is not None else 0
        self.watchers: dict[Key, dict[Watcher, _Watch]] = {}  # key -> {subscriber: its state}
        # the same keys as a mask (interval index, locate): the source turns only these bars into rows
        self._mask = np.zeros((len(INTERVALS), MAX_LOCATES), np.bool_)
        self._owing: dict[int, tuple[Watcher, _Watch]] = {}  # id(watch) -> (subscriber, watch) owed anything
        self.stats = BarStats()

    # ------------------------------------------------------------------ subscriptions
    def subscribe(self, sub: Watcher, interval_ns: int, locates: Iterable[int]) -> None:
        k = INTERVALS.index(interval_ns)
        for loc in locates:
            self.watchers.setdefault((interval_ns, loc), {}).setdefault(sub, _Watch())
            if 0 <= loc < MAX_LOCATES:
                self._mask[k, loc] = True

    def unsubscribe(self, sub: Watcher, interval_ns: int, locates: Iterable[int]) -> None:
        for loc in locates:
            subs = self.watchers.get((interval_ns, loc))
            if subs is not None:
                watch = subs.pop(sub, None)
                if watch is not None:
                    self._owing.pop(id(watch), None)
                if not subs:
                    del self.watchers[(interval_ns, loc)]
                    if 0 <= loc < MAX_LOCATES:
                        self._mask[INTERVALS.index(interval_ns), loc] = False

    def snapshot(self, sub: Watcher, interval_ns: int, locates: list[int], send_time_ns: int = 0) -> bytes | str:
        """The current bars of these symbols (latest closed, open), as a ``BarBatch`` with ``snapshot: true``."""
        source = self.source
        encoded: list[_Encoded] = []
        position = source.bars_total if source is not None else 0
        for loc in locates:
            watch = self.watchers.get((interval_ns, loc), {}).get(sub)
            bars = source.history(loc, interval_ns, 2) if source is not None else []
            if watch is not None:
                watch.skip_before = position
                watch.owed.clear()
                self._owing.pop(id(watch), None)
                if bars:
                    watch.newest = max(watch.newest, bars[-1].start_ns)
            encoded += [self._encode(b) for b in bars]
        return self._frame(encoded, sub.json, send_time_ns, snapshot=True)

    # ------------------------------------------------------------------ the flush
    def frames(self, send_time_ns: int = 0) -> dict[Watcher, bytes | str]:
        """This flush's bars frame per subscriber that can be written to and is owed anything."""
        source = self.source
        if source is None:
            return {}
        start = self.cursor
        if source.bars_total == start and not self._owing:
            return {}
        bars, self.cursor, lost = source.bars_since_watched(start, self._mask)
        self.stats.bars_lost += lost
        # per watched key: its closed bars in order (with log positions) and the newest update
        per_key: dict[Key, list[tuple[int, Bar]]] = {}
        watchers = self.watchers
        for pos, b in bars:
            key = (b.interval_ns, b.locate)
            if key in watchers:
                per_key.setdefault(key, []).append((pos, b))
        out_of: dict[Watcher, list[_Encoded]] = {}
        for key, items in per_key.items():
            kept = self._conflate(items)
            encoded = [(pos, self._encode(b)) for pos, b in kept]
            for sub, watch in watchers[key].items():
                for pos, e in encoded:
                    if pos < watch.skip_before:
                        continue
                    self._owe(sub, watch, e)
        # deliver what is owed to the subscribers that can take it; the stuck ones keep owing
        for wid, (sub, watch) in list(self._owing.items()):
            if sub.writable:
                out_of.setdefault(sub, []).extend(watch.owed)
                self.stats.bars_sent += len(watch.owed)
                watch.owed = []
                del self._owing[wid]
        return {sub: self._frame(es, sub.json, send_time_ns) for sub, es in out_of.items()}

    def _conflate(self, items: list[tuple[int, Bar]]) -> list[tuple[int, Bar]]:
        kept, dropped = conflate(items)
        self.stats.updates_conflated += dropped
        return kept

    def _owe(self, sub: Watcher, watch: _Watch, e: _Encoded) -> None:
        b = e.bar
        if b.state != REVISED and b.start_ns < watch.newest:
            self.stats.older_skipped += 1  # never back in time
            return
        if b.start_ns > watch.newest:
            watch.newest = b.start_ns
        owed = watch.owed
        if b.state != REVISED:  # an owed update is superseded by the same bar's newer state or a newer bar
            for i in range(len(owed) - 1, -1, -1):
                if owed[i].bar.state == UPDATE:  # at most one: the open bar's
                    if owed[i].bar.start_ns <= b.start_ns:
                        del owed[i]
                        self.stats.updates_conflated += 1
                    break
        owed.append(e)
        self._owing[id(watch)] = (sub, watch)

    def _encode(self, b: Bar) -> _Encoded:
        m = bar_to_pb(b, self.books.symbol_of[b.locate] or "")
        self.stats.bars_encoded += 1
        return _Encoded(b, entry(m.SerializeToString()), to_json(m))

    @staticmethod
    def _frame(encoded: list[_Encoded], json_mode: bool, send_time_ns: int, snapshot: bool = False
               ) -> bytes | str:
        if json_mode:
            return wrap_json("bars", "bars", (e.json for e in encoded), _json_extra(send_time_ns, snapshot))
        return wrap(TAG_BARS, (e.binary for e in encoded), _trailer(send_time_ns, snapshot))


assert set(BAR_CHANNELS.values()) == set(INTERVALS)
