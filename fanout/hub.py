"""Subscriptions, conflation and frames (pure): the fan-out's per-flush work.

Quotes and depth are *state channels*: per flush, find the symbols whose version moved since the last
flush (one numpy comparison), keep those someone watches, encode each once (``EntryCache``), then mark
every subscriber of each as *owing* that symbol. Each writable subscriber that owes anything gets ONE frame
per channel with the newest state of everything it owes. A subscriber that cannot be written to keeps
owing, so when it drains it is given the newest state, never a backlog: what it is owed is bounded by its
subscription, whatever the feed rate. Trades are a stream, not state: each flush's prints, or none for a
subscriber that is stuck (counted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.clock import ns_since_midnight
from normalize import MAX_LOCATES
from normalize.source import BookSource

from .encode import (
    DEPTH_SNAPSHOT_FLAG,
    TAG_DEPTH,
    TAG_QUOTES,
    TAG_SNAPSHOT,
    TAG_TRADES,
    EntryCache,
    TradeEncoder,
    build_depth,
    build_quote,
    wrap,
    wrap_json,
)

LATENCY_SAMPLES = 65_536
SHARED_FRAME_MAX_SYMBOLS = 64  # clients owing the same few symbols share one frame
Frames = list[tuple["Subscriber", list[bytes | str]]]


@dataclass(eq=False)
class Subscriber:
    id: int
    json: bool = False
    # channel -> subscribed locates
    channels: dict[str, set[int]] = field(default_factory=lambda: {"quotes": set(), "depth": set(), "trades": set()})
    # state channel -> locates owed (newest state to be sent)
    owed: dict[str, set[int]] = field(default_factory=lambda: {"quotes": set(), "depth": set()})
    # state channel -> {locate: version already given in a snapshot}, so a flush does not repeat it
    snap_seq: dict[str, dict[int, int]] = field(default_factory=lambda: {"quotes": {}, "depth": {}})
    writable: bool = True


@dataclass
class HubStats:
    flushes: int = 0
    symbols_encoded: int = 0
    frames: int = 0
    updates: int = 0
    trade_prints: int = 0
    conflated_skips: int = 0
    trades_skipped: int = 0
    trades_lost: int = 0


class StateChannel:
    """One conflated per-symbol channel: its subscribers, versions seen, and encoded entries."""

    def __init__(self, name: str, versions: npt.NDArray[np.int64], build: Callable[[int], Any], *,
                 tag: bytes, json_key: str, json_inner: str, snapshot: Callable[[list[bytes]], bytes],
                 snapshot_json: Callable[[list[str]], str], size: int) -> None:
        self.name = name
        self.versions = versions
        self.cache = EntryCache(build, size)
        self.tag = tag
        self.json_key = json_key
        self.json_inner = json_inner
        self.snapshot_frame = snapshot
        self.snapshot_json = snapshot_json
        self.subs: dict[int, set[Subscriber]] = {}
        self.count: npt.NDArray[np.int32] = np.zeros(size, np.int32)
        self.published: npt.NDArray[np.int64] = versions.copy()
        self.owing: set[Subscriber] = set()

    def changed(self, high: int) -> npt.NDArray[np.int64]:
        """Watched symbols whose version moved since the last flush (and remember the new versions)."""
        now = self.versions[:high]
        published = self.published[:high]
        moved = np.flatnonzero(now != published)
        if not len(moved):
            return moved
        published[moved] = now[moved]
        return moved[self.count[moved] > 0]

    def mark(self, locates: npt.NDArray[np.int64]) -> None:
        name, owing, subs_of = self.name, self.owing, self.subs
        for loc in locates.tolist():
            for sub in subs_of[loc]:
                sub.owed[name].add(loc)
                owing.add(sub)

    def frames(self, stats: HubStats) -> list[tuple[Subscriber, bytes | str]]:
        """One frame per writable owing subscriber; the stuck ones keep owing."""
        name = self.name
        cache = self.cache
        entries, seq_of = cache.entries, cache.seq_of
        shared: dict[tuple[bool, frozenset[int]], bytes | str] = {}
        out: list[tuple[Subscriber, bytes | str]] = []
        still: set[Subscriber] = set()
        for sub in self.owing:
            owed = sub.owed[name]
            if not sub.writable:
                stats.conflated_skips += len(owed)
                still.add(sub)
                continue
            snap = sub.snap_seq[name]
            if snap:
                owed = {loc for loc in owed if loc not in snap or seq_of[loc] > snap[loc]}
                snap.clear()
            sub.owed[name] = set()
            if not owed:
                continue
            key = None
            frame: bytes | str | None = None
            if len(owed) <= SHARED_FRAME_MAX_SYMBOLS:
                key = (sub.json, frozenset(owed))
                frame = shared.get(key)
            if frame is None:
                if sub.json:
                    frame = wrap_json(self.json_key, self.json_inner, (cache.json(loc) for loc in owed))
                else:
                    frame = wrap(self.tag, (entries[loc] for loc in owed))
                if key is not None:
                    shared[key] = frame
            stats.updates += len(owed)
            out.append((sub, frame))
        self.owing = still
        return out


class Hub:
    def __init__(self, books: BookSource, size: int = MAX_LOCATES) -> None:
        self.books = books
        self.size = size
        self.quotes = StateChannel(
            "quotes", books.seq, lambda loc: build_quote(books, loc), tag=TAG_QUOTES, json_key="quotes",
            json_inner="quotes", snapshot=lambda e: wrap(TAG_SNAPSHOT, e),
            snapshot_json=lambda j: wrap_json("snapshot", "quotes", j), size=size)
        self.depth = StateChannel(
            "depth", books.depth_seq, lambda loc: build_depth(books, loc), tag=TAG_DEPTH, json_key="depth",
            json_inner="books", snapshot=lambda e: wrap(TAG_DEPTH, e, DEPTH_SNAPSHOT_FLAG),
            snapshot_json=lambda j: wrap_json("depth", "books", j, ',"snapshot":true'), size=size)
        self.state_channels = {"quotes": self.quotes, "depth": self.depth}
        self.trade_subs: dict[int, set[Subscriber]] = {}
        self.trade_count: npt.NDArray[np.int32] = np.zeros(size, np.int32)
        self.trade_encoder = TradeEncoder(books)
        self.trade_cursor = books.trades_total
        self.stats = HubStats()
        self.latency_ns: npt.NDArray[np.int64] = np.zeros(LATENCY_SAMPLES, np.int64)
        self.latency_count = 0

    # ------------------------------------------------------------------ subscriptions
    def _tables(self, channel: str) -> tuple[dict[int, set[Subscriber]], npt.NDArray[np.int32]]:
        state = self.state_channels.get(channel)
        if state is not None:
            return state.subs, state.count
        return self.trade_subs, self.trade_count

    def subscribe(self, sub: Subscriber, channel: str, locates: list[int]) -> None:
        table, count = self._tables(channel)
        mine = sub.channels[channel]
        for loc in locates:
            if loc in mine:
                continue
            mine.add(loc)
            table.setdefault(loc, set()).add(sub)
            count[loc] += 1

    def unsubscribe(self, sub: Subscriber, channel: str, locates: list[int]) -> None:
        table, count = self._tables(channel)
        mine = sub.channels[channel]
        for loc in locates:
            if loc not in mine:
                continue
            mine.discard(loc)
            subs = table[loc]
            subs.discard(sub)
            if not subs:
                del table[loc]
            count[loc] -= 1
            if channel in sub.owed:
                sub.owed[channel].discard(loc)
                sub.snap_seq[channel].pop(loc, None)

    def remove(self, sub: Subscriber) -> None:
        for channel in sub.channels:
            self.unsubscribe(sub, channel, list(sub.channels[channel]))
        for state in self.state_channels.values():
            state.owing.discard(sub)

    def snapshot(self, sub: Subscriber, locates: list[int], channel: str = "quotes") -> bytes | str:
        """The snapshot frame of these symbols as they are now; later flushes send only newer versions."""
        state = self.state_channels[channel]
        cache = state.cache
        cache.refresh(locates)
        snap = sub.snap_seq[channel]
        for loc in locates:
            snap[loc] = int(cache.seq_of[loc])
        if sub.json:
            return state.snapshot_json([cache.json(loc) for loc in locates])
        return state.snapshot_frame([cache.entries[loc] for loc in locates])

    # ------------------------------------------------------------------ the flush
    def flush(self) -> Frames:
        """Encode what changed once, and return each writable subscriber's frames for this flush."""
        books = self.books
        stats = self.stats
        stats.flushes += 1
        high = min(books.high_locate + 1, self.size)
        per_sub: dict[Subscriber, list[bytes | str]] = {}
        for state in self.state_channels.values():
            watched = state.changed(high)
            if len(watched):
                stats.symbols_encoded += state.cache.refresh(watched)
                if state is self.quotes:
                    self._sample_latency(watched)
                state.mark(watched)
            if state.owing:
                for sub, frame in state.frames(stats):
                    per_sub.setdefault(sub, []).append(frame)
        self._add_trades(per_sub)
        out = list(per_sub.items())
        stats.frames += sum(len(frames) for _, frames in out)
        return out

    def _add_trades(self, per_sub: dict[Subscriber, list[bytes | str]]) -> None:
        """Trades are not conflated: each watcher gets this flush's prints, or skips them if it is stuck."""
        books = self.books
        if books.trades_total == self.trade_cursor:
            return
        prints, self.trade_cursor, lost = books.trades_since(self.trade_cursor)
        self.stats.trades_lost += lost
        if not self.trade_subs:
            return
        by_symbol = self.trade_encoder.encode(prints, self.trade_count)
        watchers: dict[Subscriber, list[int]] = {}
        for loc in by_symbol:
            for sub in self.trade_subs.get(loc, ()):
                watchers.setdefault(sub, []).append(loc)
        for sub, locs in watchers.items():
            if not sub.writable:
                self.stats.trades_skipped += len(locs)
                continue
            if sub.json:
                frame: bytes | str = wrap_json("trades", "trades", (j for loc in locs for j in by_symbol[loc][1]))
            else:
                frame = wrap(TAG_TRADES, (by_symbol[loc][0] for loc in locs))
            self.stats.trade_prints += sum(len(by_symbol[loc][1]) for loc in locs)
            per_sub.setdefault(sub, []).append(frame)

    def _sample_latency(self, locates: npt.NDArray[np.int64]) -> None:
        """Exchange time -> this flush, per encoded symbol (per symbol, not per client: the frames share it)."""
        lat = ns_since_midnight() - self.quotes.cache.exchange_time[locates]
        n = len(lat)
        if n > LATENCY_SAMPLES:
            lat = lat[-LATENCY_SAMPLES:]
            n = LATENCY_SAMPLES
        start = self.latency_count % LATENCY_SAMPLES
        end = start + n
        if end <= LATENCY_SAMPLES:
            self.latency_ns[start:end] = lat
        else:
            split = LATENCY_SAMPLES - start
            self.latency_ns[start:] = lat[:split]
            self.latency_ns[: n - split] = lat[split:]
        self.latency_count += n

    def latency_percentiles(self, window: int = 20_000) -> tuple[float, float]:
        """(p50, p99) in milliseconds over the most recent samples; (0, 0) before any."""
        n = min(self.latency_count, LATENCY_SAMPLES, window)
        if n == 0:
            return 0.0, 0.0
        end = self.latency_count % LATENCY_SAMPLES
        idx = np.arange(end - n, end) % LATENCY_SAMPLES
        p50, p99 = np.percentile(self.latency_ns[idx], [50, 99])
        return float(p50) / 1e6, float(p99) / 1e6
