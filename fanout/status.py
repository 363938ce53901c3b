"""The "status" channel (pure): the trading status of subscribed symbols and of the market, every change.

Status is a stream of events, like trades, not conflated state like quotes: each flush takes the books' new
status events (``BookSource.status_since``; in-process every event in order, each with the symbol's whole state
after it), encodes each once (protobuf entry bytes and JSON), and gives every subscriber of its symbol one
``StatusBatch`` frame per flush with its events in order. Market-wide events go to every status subscriber. A
batch holds at most one market state (``StatusBatch.market``), so a flush with two market events sends two
frames: no transition is merged away. A node fed from shared memory or Redis sees states, not events: there
one event per changed symbol per flush is what exists, and ``SymbolStatus.version`` says how many it covers.

Subscribing sends the current state first (``snapshot``: the market and every newly subscribed symbol,
``snapshot = true``). A subscriber that cannot be written to when its events come is not given a backlog: it
is marked, and once writable it gets a fresh snapshot of everything it watches (so what it holds is current,
and the versions tell it events passed). The same happens to every subscriber if the books' bounded event log
overflowed between two flushes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from normalize.source import BookSource
from normalize.status import MarketStatusView, StatusEvent, read_status
from tickfan_proto import stream_pb2 as pb

from .encode import to_json, varint

if TYPE_CHECKING:
    from .hub import Subscriber

TAG_STATUS = b"\x6a"  # ServerMessage.status = 13, length-delimited
TAG_MARKET = b"\x0a"  # StatusBatch.market = 1
TAG_SYMBOL = b"\x12"  # StatusBatch.symbols = 2
SNAPSHOT_FLAG = b"\x18\x01"  # StatusBatch.snapshot = true (field 3, varint)
TAG_SEND_TIME = b"\x20"  # StatusBatch.send_time_ns (field 4, varint)
CHANNEL = "status"


@dataclass
class StatusStats:
    events: int = 0        # status events taken from the books
    frames: int = 0        # status frames handed to subscribers (snapshots included)
    resyncs: int = 0       # snapshots sent instead of events a subscriber could not take
    lost: int = 0          # events the books' bounded log dropped before a flush took them


class _Item:
    """One encoded event: its entry bytes (tag + length + message) and its JSON object."""

    __slots__ = ("market", "entry", "json")

    def __init__(self, market: bool, message_bytes: bytes, json: str) -> None:
        self.market = market
        self.entry = (TAG_MARKET if market else TAG_SYMBOL) + varint(len(message_bytes)) + message_bytes
        self.json = json


def _item(view_pb: pb.SymbolStatus | pb.MarketStatus, market: bool) -> _Item:
    return _Item(market, view_pb.SerializeToString(), to_json(view_pb))


def frame(items: Iterable[_Item], json_mode: bool, snapshot: bool = False, send_time_ns: int = 0) -> bytes | str:
    """One ``ServerMessage{status: StatusBatch}`` of these items (at most one market item, placed first), with
    the node's send time (0: none)."""
    items = sorted(items, key=lambda it: not it.market)  # stable: symbol events keep their order
    if json_mode:
        market = [it.json for it in items if it.market]
        symbols = [it.json for it in items if not it.market]
        parts = []
        if market:
            parts.append('"market":' + market[0])
        if symbols:
            parts.append('"symbols":[' + ",".join(symbols) + "]")
        if snapshot:
            parts.append('"snapshot":true')
        if send_time_ns:
            parts.append(f'"sendTimeNs":"{send_time_ns}"')
        return '{"status":{' + ",".join(parts) + "}}"
    body = (b"".join(it.entry for it in items) + (SNAPSHOT_FLAG if snapshot else b"")
            + (TAG_SEND_TIME + varint(send_time_ns) if send_time_ns > 0 else b""))
    return TAG_STATUS + varint(len(body)) + body


class StatusChannel:
    """Subscriptions and per-flush frames of the status channel (see the module docstring)."""

    def __init__(self, books: BookSource, size: int) -> None:
        self.books = books
        self.subs: dict[int, set[Subscriber]] = {}  # locate -> its status subscribers
        self.count: npt.NDArray[np.int32] = np.zeros(size, np.int32)
        self.members: dict[Subscriber, int] = {}  # subscriber -> how many symbols it watches here
        self.resync: set[Subscriber] = set()
        self.cursor = books.status_total
        self.stats = StatusStats()

    # ------------------------------------------------------------------ subscriptions
    def subscribe(self, sub: Subscriber, locates: list[int]) -> None:
        mine = sub.stream(CHANNEL)
        for loc in locates:
            if loc in mine:
                continue
            mine.add(loc)
            self.subs.setdefault(loc, set()).add(sub)
            self.count[loc] += 1
            self.members[sub] = self.members.get(sub, 0) + 1
        sub.settle(CHANNEL)

    def unsubscribe(self, sub: Subscriber, locates: list[int]) -> None:
        mine = sub.channels.get(CHANNEL)
        if mine is None:
            return
        for loc in locates:
            if loc not in mine:
                continue
            mine.discard(loc)
            subs = self.subs[loc]
            subs.discard(sub)
            if not subs:
                del self.subs[loc]
            self.count[loc] -= 1
            left = self.members[sub] - 1
            if left:
                self.members[sub] = left
            else:
                del self.members[sub]
                self.resync.discard(sub)
        sub.settle(CHANNEL)

    # ------------------------------------------------------------------ frames
    def _current(self, locates: Iterable[int]) -> list[_Item]:
        books = self.books
        items = [_item(MarketStatusView.of(books.market).to_pb(), True)]
        items += [_item(read_status(books, books.symbol_of, loc).to_pb(), False) for loc in locates]
        return items

    def snapshot(self, sub: Subscriber, locates: list[int], send_time_ns: int = 0) -> bytes | str:
        """The market and these symbols as they are now (``snapshot = true``)."""
        self.stats.frames += 1
        return frame(self._current(locates), sub.json, snapshot=True, send_time_ns=send_time_ns)

    def frames(self, send_time_ns: int = 0) -> tuple[list[Subscriber], list[list[bytes | str]]]:
        """This flush's status frames per writable subscriber (parallel lists); the stuck are marked for resync."""
        subs_out: list[Subscriber] = []
        frames_out: list[list[bytes | str]] = []
        # every flush: in-process books answer from their log's cursor at once, a replica (which sees states)
        # by comparing its status versions with the last call's, so it must be asked even when nobody listens
        events, self.cursor, lost = self.books.status_since(self.cursor)
        self.stats.events += len(events)
        if lost:
            self.stats.lost += lost
            self.resync.update(self.members)  # they cannot be told what was lost: they get the state
        if events and self.members:
            per_sub = self._route(events)
            for sub, items in per_sub.items():
                if sub in self.resync:
                    continue
                if not sub.writable:
                    self.resync.add(sub)
                    continue
                subs_out.append(sub)
                frames_out.append(self._split(items, sub.json, send_time_ns))
        if self.resync:
            for sub in [s for s in self.resync if s.writable]:
                self.resync.discard(sub)
                self.stats.resyncs += 1
                self.stats.frames += 1
                snap = frame(self._current(sorted(sub.watching(CHANNEL))), sub.json, snapshot=True,
                             send_time_ns=send_time_ns)
                subs_out.append(sub)
                frames_out.append([snap])
        return subs_out, frames_out

    def _route(self, events: list[StatusEvent]) -> dict[Subscriber, list[_Item]]:
        """Each event encoded once, handed (shared) to every subscriber it concerns, in order."""
        per_sub: dict[Subscriber, list[_Item]] = {}
        for loc, view in events:
            if loc == 0:
                targets: Iterable[Subscriber] = self.members
            else:
                targets = self.subs.get(loc, ())
                if not targets:
                    continue
            item = _item(view.to_pb(), loc == 0)
            for sub in targets:
                got = per_sub.get(sub)
                if got is None:
                    per_sub[sub] = [item]
                else:
                    got.append(item)
        return per_sub

    def _split(self, items: list[_Item], json_mode: bool, send_time_ns: int) -> list[bytes | str]:
        """Frames of these events in order: a new frame where a second market state would not fit in one."""
        out: list[bytes | str] = []
        batch: list[_Item] = []
        has_market = False
        for it in items:
            if it.market and (has_market or batch):
                # the market state leads its batch: symbol events before it go first, in their own frame
                out.append(frame(batch, json_mode, send_time_ns=send_time_ns))
                batch, has_market = [], False
            batch.append(it)
            has_market = has_market or it.market
        if batch:
            out.append(frame(batch, json_mode, send_time_ns=send_time_ns))
        self.stats.frames += len(out)
        return out
