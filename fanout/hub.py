"""Subscriptions, conflation and frames (pure): the fan-out's per-flush work.

Quotes and depth are *state channels*: per flush, find the symbols whose version moved since the last
flush (one numpy comparison), keep those someone watches, encode each once (``EntryCache``), then mark
every subscriber of each as *owing* that symbol. Each writable subscriber that owes anything gets ONE frame
per channel with the newest state of everything it owes. A subscriber that cannot be written to keeps
owing, so when it drains it is given the newest state, never a backlog: what it is owed is bounded by its
subscription, whatever the feed rate. Trades are a stream, not state: each flush's prints, or none for a
subscriber that is stuck (counted). Status is a stream of events too (``fanout.status``: every event, in order;
a stuck subscriber gets a fresh snapshot instead of a backlog).

``Subscriber`` and a flush's ``FlushResult`` are defined in ``fanout.subscriber`` (``Subscriber`` is importable
from here too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from normalize import MAX_LOCATES
from normalize.bar_feed import BarSource
from normalize.source import BookSource
from tickfan_proto import stream_pb2 as pb
from vocab.histogram import Histogram

from .bars import BAR_CHANNELS, BarChannel
from .encode import (
    DEPTH_SNAPSHOT_FLAG,
    NO_SEND_TIME,
    SEND_TIME_FIELD,
    TAG_DEPTH,
    TAG_QUOTES,
    TAG_SNAPSHOT,
    BatchBuild,
    EntryCache,
    Headers,
    SendTime,
    SymbolPrints,
    TradeEncoder,
    build_depth,
    build_quote,
    stamp_send_time,
    trade_batches,
    wrap,
    wrap_json,
)
from .history import TradeHistory
from .quote_kernel import QuoteEncoder
from .status import CHANNEL as STATUS
from .status import StatusChannel
from .subscriber import EMPTY, FlushResult
from .subscriber import Subscriber as Subscriber  # imported from here by most
from .tiers import NO_PACING, Pacing

LATENCY_SAMPLES = 65_536


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
    # symbols put in snapshots, and how many of them had to be encoded (the rest were cached at their version)
    snapshot_symbols: int = 0
    snapshot_encoded: int = 0


class StateChannel:
    """One conflated per-symbol channel: its subscriptions, versions seen, and encoded entries.

    Subscriptions are *edges* (subscriber slot, locate) in flat numpy arrays, each with an ``owed`` flag
    and the version a snapshot already gave. A flush marks every live edge of a changed symbol owed in one
    vectorised step, drops what a snapshot already carried, and groups the owed edges by subscriber with
    one sort; Python then runs once per owing subscriber (its frame, shared with every subscriber owing
    exactly the same symbols), never once per (subscriber, symbol). A subscriber that cannot be written to
    keeps its edges owed, so when it drains it gets the newest state of each, once.
    """

    def __init__(self, name: str, versions: npt.NDArray[np.int64], build: Callable[[int], Any], *,
                 tag: bytes, json_key: str, json_inner: str, snapshot: Callable[[list[bytes], SendTime], bytes],
                 snapshot_json: Callable[[list[str], SendTime], str], size: int, batch: BatchBuild | None = None,
                 exchange_time: npt.NDArray[np.int64] | None = None, parse: Callable[[bytes], Any] | None = None
                 ) -> None:
        """``batch``, ``exchange_time``, ``parse``: a compiled encoder of a whole refresh (``EntryCache``)."""
        self.name = name
        self.versions = versions
        self.cache = EntryCache(build, size, batch=batch, versions=versions, exchange_time=exchange_time,
                                parse=parse)
        self.tag = tag
        self.json_key = json_key
        self.json_inner = json_inner
        self.snapshot_frame = snapshot
        self.snapshot_json = snapshot_json
        self.headers = Headers(tag)
        self.count: npt.NDArray[np.int32] = np.zeros(size, np.int32)
        self.published: npt.NDArray[np.int64] = versions.copy()
        self._changed: npt.NDArray[np.bool_] = np.zeros(size, np.bool_)
        # edges: [0, self.high) is in use; dead edges (unsubscribed) are on the free list
        capacity = 1024
        self.edge_slot: npt.NDArray[np.int64] = np.zeros(capacity, np.int64)
        self.edge_loc: npt.NDArray[np.int64] = np.zeros(capacity, np.int64)
        self.edge_snap: npt.NDArray[np.int64] = np.zeros(capacity, np.int64)
        self.live: npt.NDArray[np.bool_] = np.zeros(capacity, np.bool_)
        self.owed: npt.NDArray[np.bool_] = np.zeros(capacity, np.bool_)
        self.high = 0
        self._free: list[int] = []
        self.any_owed = False

    # ------------------------------------------------------------------ edges
    def add_edge(self, slot: int, loc: int) -> int:
        if self._free:
            e = self._free.pop()
        else:
            if self.high == len(self.live):
                self._grow()
            e = self.high
            self.high += 1
        self.edge_slot[e] = slot
        self.edge_loc[e] = loc
        self.edge_snap[e] = 0
        self.live[e] = True
        self.owed[e] = False
        self.count[loc] += 1
        return e

    def drop_edge(self, e: int) -> None:
        self.count[self.edge_loc[e]] -= 1
        self.live[e] = False
        self.owed[e] = False
        self._free.append(e)

    def _grow(self) -> None:
        n = 2 * len(self.live)
        for name in ("edge_slot", "edge_loc", "edge_snap", "live", "owed"):
            old = getattr(self, name)
            new = np.zeros(n, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    # ------------------------------------------------------------------ the flush
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
        """Every live edge of these symbols is owed."""
        if not len(locates) or not self.high:
            return
        flag = self._changed
        flag[locates] = True
        n = self.high
        self.owed[:n] |= flag[self.edge_loc[:n]]  # dead edges' locates may be flagged: live filters them
        self.owed[:n] &= self.live[:n]
        flag[locates] = False
        self.any_owed = True

    def frames(self, stats: HubStats, subscriber_of: list[Subscriber | None], stamp: SendTime = NO_SEND_TIME,
               pacing: Pacing = NO_PACING) -> tuple[list[Subscriber], list[bytes | str]]:
        """One frame per writable owing subscriber (parallel lists); the stuck ones keep owing.

        The owed entries, grouped by subscriber, are joined once into one buffer, so a subscriber's frame
        is a header plus one slice of it; subscribers owing exactly the same symbols share the frame
        object. Nothing per subscriber is a container the garbage collector has to track.
        """
        subs_out: list[Subscriber] = []
        frames_out: list[bytes | str] = []
        if not self.any_owed:
            return subs_out, frames_out
        # a subscriber of a slower conflation tier not due this flush keeps owing (``fanout.tiers``)
        idx, held = pacing.due_edges(np.flatnonzero(self.owed[:self.high]), self.edge_slot)
        if not len(idx):
            self.any_owed = held
            return subs_out, frames_out
        cache = self.cache
        locs = self.edge_loc[idx]
        # what a snapshot already gave is not owed (versions only grow)
        fresh = cache.seq_of[locs] > self.edge_snap[idx]
        if not fresh.all():
            self.owed[idx[~fresh]] = False
            idx, locs = idx[fresh], locs[fresh]
            if not len(idx):
                self.any_owed = held
                return subs_out, frames_out
        # group by subscriber slot (ascending locates inside a group, so equal sets have equal keys)
        keys = np.sort((self.edge_slot[idx] << 16) | locs)
        slots = keys >> 16
        loc16 = (keys & 0xFFFF).astype(np.uint16)
        starts = np.flatnonzero(np.concatenate(([True], slots[1:] != slots[:-1])))
        ends = np.append(starts[1:], len(keys))
        pacing.sent(slots, starts)
        offsets = np.concatenate(([0], np.cumsum(cache.lengths[loc16])))
        locs_l = loc16.tolist()
        entries = cache.entries
        blob = b"".join([entries[loc] for loc in locs_l])
        raw = loc16.tobytes()
        heads = self.headers
        trailer = stamp.binary
        extra = len(trailer)
        shared: dict[bytes, bytes] = {}
        shared_json: dict[bytes, str] = {}
        stuck: list[int] = []
        updates = skips = 0
        for slot, a, b, x, y in zip(slots[starts].tolist(), starts.tolist(), ends.tolist(),
                                    offsets[starts].tolist(), offsets[ends].tolist(), strict=True):
            sub = subscriber_of[slot]
            if sub is None:
                continue
            if not sub.writable:
                skips += b - a
                stuck.append(slot)
                continue
            key = raw[2 * a:2 * b]
            if sub.json:
                text = shared_json.get(key)
                if text is None:
                    text = shared_json[key] = wrap_json(self.json_key, self.json_inner,
                                                        [cache.json(loc) for loc in locs_l[a:b]], stamp.json)
                frames_out.append(text)
            else:
                frame = shared.get(key)
                if frame is None:
                    frame = shared[key] = heads[y - x + extra] + blob[x:y] + trailer
                frames_out.append(frame)
            subs_out.append(sub)
            updates += b - a
        # the written subscribers owe nothing now; the stuck ones keep their edges owed
        if stuck:
            keep = np.isin(self.edge_slot[idx], np.array(stuck, np.int64))
            self.owed[idx[~keep]] = False
        else:
            self.owed[idx] = False
            self.any_owed = held
        stats.updates += updates
        stats.conflated_skips += skips
        return subs_out, frames_out


class Hub:
    def __init__(self, books: BookSource, size: int = MAX_LOCATES, bars: BarSource | None = None) -> None:
        """``bars``: where the ``bars:1s``/``bars:1m`` channels come from (None: they stay silent)."""
        self.books = books
        self.size = size
        self.quotes = StateChannel(
            "quotes", books.seq, lambda loc: build_quote(books, loc), tag=TAG_QUOTES, json_key="quotes",
            json_inner="quotes", snapshot=lambda e, t: wrap(TAG_SNAPSHOT, e, t.binary),
            snapshot_json=lambda j, t: wrap_json("snapshot", "quotes", j, t.json), size=size,
            batch=QuoteEncoder(books), exchange_time=books.exchange_time, parse=pb.Quote.FromString)
        self.depth = StateChannel(
            "depth", books.depth_seq, lambda loc: build_depth(books, loc), tag=TAG_DEPTH, json_key="depth",
            json_inner="books", snapshot=lambda e, t: wrap(TAG_DEPTH, e, DEPTH_SNAPSHOT_FLAG + t.binary),
            snapshot_json=lambda j, t: wrap_json("depth", "books", j, ',"snapshot":true' + t.json), size=size)
        self.state_channels = {"quotes": self.quotes, "depth": self.depth}
        self.subscriber_of: list[Subscriber | None] = []  # by slot
        self.pacing = Pacing()  # per slot: its conflation tier's flush period
        self._free_slots: list[int] = []
        self.trade_subs: dict[int, set[Subscriber]] = {}
        self.trade_count: npt.NDArray[np.int32] = np.zeros(size, np.int32)
        self.status = StatusChannel(books, size)
        self.trade_encoder = TradeEncoder(books)
        self.trade_cursor = books.trades_total
        self._trade_burst = False
        # per locate: the trade_seq of the newest print a flush has passed (what live delivery is at)
        self.last_trade_seq: npt.NDArray[np.int64] = np.zeros(size, np.int64)
        self._epoch = int(getattr(books, "session_epoch", 0))
        # every print the flushes passed, for resume (None: not kept)
        self.history: TradeHistory | None = None
        self.bars = BarChannel(books, bars)
        self.stats = HubStats()
        self.latency_ns: npt.NDArray[np.int64] = np.zeros(LATENCY_SAMPLES, np.int64)
        self.latency_count = 0
        # every sample since start, in cumulative buckets (the ring above serves the status line's percentiles)
        self.latency = Histogram.seconds(unit=1e-9)

    # ------------------------------------------------------------------ subscriptions
    def _slot(self, sub: Subscriber) -> int:
        if sub.slot < 0:
            if self._free_slots:
                sub.slot = self._free_slots.pop()
                self.subscriber_of[sub.slot] = sub
            else:
                sub.slot = len(self.subscriber_of)
                self.subscriber_of.append(sub)
            self.pacing.assign(sub.slot, sub.period_ns)
        return sub.slot

    def pace(self, sub: Subscriber, period_ns: int) -> None:
        """``sub``'s quotes and depth at most once per ``period_ns`` (its conflation tier; 0: every flush)."""
        sub.period_ns = period_ns
        self.pacing.assign(sub.slot, period_ns)  # a slot given later gets it then

    def subscribe(self, sub: Subscriber, channel: str, locates: list[int]) -> None:
        sub.version += 1
        if channel == STATUS:
            self.status.subscribe(sub, locates)
            return
        state = self.state_channels.get(channel)
        if state is not None:
            if not locates:
                return
            slot = self._slot(sub)
            edges = sub.edges.get(channel)
            if edges is None:
                edges = sub.edges[channel] = {}
            for loc in locates:
                if loc not in edges:
                    edges[loc] = state.add_edge(slot, loc)
            return
        mine = sub.stream(channel)
        interval = BAR_CHANNELS.get(channel)
        if interval is not None:
            new = [loc for loc in locates if loc not in mine]
            mine.update(new)
            self.bars.subscribe(sub, interval, new)
            sub.settle(channel)
            return
        for loc in locates:
            if loc in mine:
                continue
            mine.add(loc)
            self.trade_subs.setdefault(loc, set()).add(sub)
            self.trade_count[loc] += 1
            # prints already flushed are not this subscriber's to miss; the ring's unflushed ones come next flush
            sub.trade_seen[loc] = int(self.last_trade_seq[loc])
        sub.settle(channel)
        sub.version += 1

    def unsubscribe(self, sub: Subscriber, channel: str, locates: list[int]) -> None:
        sub.version += 1
        if channel == STATUS:
            self.status.unsubscribe(sub, locates)
            return
        state = self.state_channels.get(channel)
        if state is not None:
            edges = sub.edges.get(channel)
            if edges is not None:
                for loc in locates:
                    e = edges.pop(loc, None)
                    if e is not None:
                        state.drop_edge(e)
                sub.settle(channel)
            return
        mine = sub.channels.get(channel)
        if mine is None:
            return
        interval = BAR_CHANNELS.get(channel)
        if interval is not None:
            gone = [loc for loc in locates if loc in mine]
            mine.difference_update(gone)
            self.bars.unsubscribe(sub, interval, gone)
            sub.settle(channel)
            return
        for loc in locates:
            if loc not in mine:
                continue
            mine.discard(loc)
            sub.trade_seen.pop(loc, None)
            sub.trade_floor.pop(loc, None)
            subs = self.trade_subs[loc]
            subs.discard(sub)
            if not subs:
                del self.trade_subs[loc]
            self.trade_count[loc] -= 1
        sub.settle(channel)

    def remove(self, sub: Subscriber) -> None:
        for channel in [*sub.edges, *sub.channels]:
            self.unsubscribe(sub, channel, list(sub.watching(channel)))
        if sub.slot >= 0:
            self.subscriber_of[sub.slot] = None
            self.pacing.assign(sub.slot, 0)
            self._free_slots.append(sub.slot)
            sub.slot = -1

    def snapshot(self, sub: Subscriber, locates: list[int], channel: str = "quotes", send_time_ns: int = 0
                 ) -> bytes | str:
        """The snapshot frame of these symbols as they are now; later flushes send only newer versions.

        Served from the bytes already encoded for each symbol's current version (shared by every client and by
        the flushes): only a symbol whose version moved since it was last encoded is encoded again. A bars
        channel's snapshot is its symbols' latest closed and open bars (``fanout.bars``); the status channel's,
        the market and these symbols' current status."""
        if channel == STATUS:
            return self.status.snapshot(sub, locates, send_time_ns)
        interval = BAR_CHANNELS.get(channel)
        if interval is not None:
            return self.bars.snapshot(sub, interval, locates, send_time_ns)
        state = self.state_channels[channel]
        cache = state.cache
        self.stats.snapshot_symbols += len(locates)
        self.stats.snapshot_encoded += cache.current(locates, state.versions)
        edges = sub.edges.get(channel, {})
        for loc in locates:
            e = edges.get(loc)
            if e is not None:
                state.edge_snap[e] = int(cache.seq_of[loc])
        stamp = stamp_send_time(send_time_ns, SEND_TIME_FIELD["snapshot" if channel == "quotes" else channel])
        if sub.json:
            return state.snapshot_json([cache.json(loc) for loc in locates], stamp)
        return state.snapshot_frame([cache.entries[loc] for loc in locates], stamp)

    # ------------------------------------------------------------------ the flush
    def flush(self, now_ns: int, send_time_ns: int = 0, window: tuple[int, int] | None = None) -> FlushResult:
        """Encode what changed once, and return each writable subscriber's frames for this flush.

        ``now_ns``: the time of this flush in ns since the Unix epoch, the books' clock (read by the adapter:
        this core never reads a clock), for the latency samples; ``send_time_ns``: the Unix time the frames are
        sent, appended once to every batch's shared frame (``stamp_send_time``; 0: not carried), and the trade
        history's clock. ``window`` (lo, hi): only the subscribers of slots lo..hi-1 are given quotes and depth
        (the others keep owing theirs), and the streams (trades, bars, status) only in the window at slot 0, so a
        pass over every window gives each subscriber its streams once."""
        books = self.books
        stats = self.stats
        stats.flushes += 1
        high = min(books.high_locate + 1, self.size)
        parts: list[tuple[list[Subscriber], list[bytes | str]]] = []
        self.pacing.hold(now_ns, window)
        for state in self.state_channels.values():
            watched = state.changed(high)
            if len(watched):
                stats.symbols_encoded += state.cache.refresh(watched)
                if state is self.quotes:
                    self._sample_latency(watched, now_ns)
                state.mark(watched)
            stamp = stamp_send_time(send_time_ns, SEND_TIME_FIELD[state.json_key])
            subs, frames = state.frames(stats, self.subscriber_of, stamp, self.pacing)
            if subs:
                parts.append((subs, frames))
        status_subs: list[Subscriber] = []
        status_frames: list[list[bytes | str]] = []
        self._trade_burst = False
        if window is None or window[0] == 0:
            trades = self._trade_frames(send_time_ns)
            if trades[0]:
                parts.append(trades)
            bars = self.bars.frames(send_time_ns)
            if bars:
                parts.append(([cast(Subscriber, sub) for sub in bars], list(bars.values())))
            status_subs, status_frames = self.status.frames(send_time_ns)
        stats.frames += sum(len(p[0]) for p in parts) + sum(len(f) for f in status_frames)
        if not parts and not status_subs:
            return EMPTY
        if len(parts) == 1 and not status_subs and not self._trade_burst:
            return FlushResult(parts[0][0], parts[0][1], True)
        per_sub: dict[Subscriber, list[bytes | str]] = {}
        for subs, frames in parts:
            for sub, frame in zip(subs, frames, strict=True):
                got = per_sub.get(sub)
                if got is None:
                    per_sub[sub] = [frame]
                else:
                    got.append(frame)
        for sub, several in zip(status_subs, status_frames, strict=True):
            per_sub.setdefault(sub, []).extend(several)
        return FlushResult(list(per_sub), list(per_sub.values()), False)

    def _trade_frames(self, send_time_ns: int = 0) -> tuple[list[Subscriber], list[bytes | str]]:
        """Trades are not conflated: each watcher gets this flush's prints, or skips them if it is stuck."""
        books = self.books
        subs_out: list[Subscriber] = []
        frames_out: list[bytes | str] = []
        out = (subs_out, frames_out)
        self._trade_burst = False  # a subscriber given several frames (it is then listed once for each)
        self.sync_epoch()
        if books.trades_total == self.trade_cursor:
            return out
        prints, self.trade_cursor, lost = books.trades_since(self.trade_cursor)
        self.stats.trades_lost += lost
        if len(prints.locate):
            np.maximum.at(self.last_trade_seq, prints.locate, prints.trade_seq)
            if self.history is not None:
                self.history.record(prints, send_time_ns)
        if not self.trade_subs:
            return out
        by_symbol = self.trade_encoder.encode(prints, self.trade_count)
        watchers: dict[Subscriber, list[int]] = {}
        for loc in by_symbol:
            for sub in self.trade_subs.get(loc, ()):
                watchers.setdefault(sub, []).append(loc)
        stamp = stamp_send_time(send_time_ns, SEND_TIME_FIELD["trades"])
        for sub, locs in watchers.items():
            if not sub.writable:
                self.stats.trades_skipped += len(locs)
                continue
            parts = [by_symbol[loc] for loc in locs]
            if sub.trade_floor:
                parts = [self._past_floor(sub, loc, p) for loc, p in zip(locs, parts, strict=True)]
            seen = sub.trade_seen
            sent = 0
            for loc, p in zip(locs, parts, strict=True):
                if p.trade_seqs:
                    seen[loc] = p.trade_seqs[-1]
                    sent += len(p.trade_seqs)
            if not sent:
                continue
            sub.version += 1
            self.stats.trade_prints += sent
            frames = trade_batches(parts, sub.json, stamp)
            self._trade_burst |= len(frames) > 1
            for frame in frames:
                subs_out.append(sub)
                frames_out.append(frame)
        return out

    def sync_epoch(self) -> None:
        """Follow the books' feed session: a new one (a Redis publisher restarted, or an edge's first marks)
        numbers its prints from 1 again, so what live delivery and each subscriber are at starts over. Called
        every flush, prints or not, and before a resume sets its floors: a switch noticed only at the first print
        after a resume would wipe the floor its replay just set, and the replay's tail would go out again."""
        epoch = int(getattr(self.books, "session_epoch", 0))
        if epoch == self._epoch:
            return
        self._epoch = epoch
        self.last_trade_seq[:] = 0
        for subs in self.trade_subs.values():
            for sub in subs:
                sub.trade_seen.clear()
                sub.trade_floor.clear()
                sub.version += 1

    def _past_floor(self, sub: Subscriber, loc: int, p: SymbolPrints) -> SymbolPrints:
        """A resumed subscriber's prints of ``loc`` past what its replay already gave (the floor is dropped
        once live delivery has passed it)."""
        floor = sub.trade_floor.get(loc)
        if floor is None:
            return p
        if self.last_trade_seq[loc] >= floor:
            del sub.trade_floor[loc]
        if not p.trade_seqs or p.trade_seqs[0] > floor:
            return p
        keep = [i for i, n in enumerate(p.trade_seqs) if n > floor]
        entries = [p.entries[i] for i in keep]
        return SymbolPrints(b"".join(entries), [p.json[i] for i in keep], entries, [p.trade_seqs[i] for i in keep])

    def _sample_latency(self, locates: npt.NDArray[np.int64], now_ns: int) -> None:
        """Exchange time -> this flush, per encoded symbol (per symbol, not per client: the frames share it)."""
        lat = now_ns - self.quotes.cache.exchange_time[locates]
        self.latency.observe_many(lat)
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
