"""Encode once, share the bytes (pure).

Each changed symbol's ``Quote`` is serialized once per flush and kept as a ready-made *repeated-field
entry* (tag, length, bytes). A client's frame is then the concatenation of its symbols' entries behind the
``ServerMessage`` oneof tag and length: byte-identical to what protobuf itself would serialize for the same
message, with no per-client encoding. JSON mode does the same with canonical proto3 JSON fragments.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from normalize import TradePrints
from normalize.quote import read_depth, read_quote
from normalize.row import DEPTH_LEVELS
from normalize.source import BookSource
from normalize.trades import trade_pb
from tickfan_proto import stream_pb2 as pb

# ServerMessage oneof field numbers, wire type 2 (length-delimited): tag byte = field << 3 | 2
TAG_SNAPSHOT = b"\x0a"
TAG_QUOTES = b"\x12"
TAG_TRADES = b"\x1a"
TAG_DEPTH = b"\x42"
TAG_BARS = b"\x62"  # ServerMessage.bars = 12
DEPTH_SNAPSHOT_FLAG = b"\x10\x01"  # DepthBatch.snapshot = true (field 2, varint)
TAG_REPEATED_1 = b"\x0a"  # Snapshot.quotes, QuoteBatch.quotes, TradeBatch.trades are all field 1


# send_time_ns' field number in each batch message (Snapshot, QuoteBatch, TradeBatch: 2; DepthBatch, BarBatch: 3;
# StatusBatch: 4), by the ServerMessage oneof name that carries it
# prints in one live TradeBatch frame at most (a replay's frames hold as many): a burst goes out in several
TRADE_FRAME_PRINTS = 500
SEND_TIME_FIELD = {"snapshot": 2, "quotes": 2, "trades": 2, "depth": 3, "bars": 3, "status": 4}


class SendTime(NamedTuple):
    """One flush's send time as the last field of a batch message, encoded once and appended to every frame."""

    binary: bytes  # the field's tag and varint: append to the batch's body (its length counts them)
    json: str      # ',"sendTimeNs":"..."': append inside the batch's JSON object


NO_SEND_TIME = SendTime(b"", "")


def stamp_send_time(send_time_ns: int, field_number: int) -> SendTime:
    """The ``send_time_ns`` field (Unix ns, when the node sends the frame) of a batch message whose field number
    for it is ``field_number`` (``SEND_TIME_FIELD``): made once per flush, appended to the shared frames, so
    no frame is encoded again per client. Zero is proto3's default and is left out, as protobuf does."""
    if send_time_ns <= 0:
        return NO_SEND_TIME
    return SendTime(varint(field_number << 3) + varint(send_time_ns), ',"sendTimeNs":"' + str(send_time_ns) + '"')


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class Headers(dict[int, bytes]):
    """``tag + varint(n)`` for one oneof tag, memoised by body length ``n`` (a frame is header + body). A dict
    with ``__missing__``: a known length is a plain dict lookup (no Python call per frame of a flush)."""

    __slots__ = ("tag",)

    def __init__(self, tag: bytes) -> None:
        super().__init__()
        self.tag = tag

    def __missing__(self, n: int) -> bytes:
        h = self[n] = self.tag + varint(n)
        return h


def wrap(tag: bytes, entries: Iterable[bytes], trailer: bytes = b"") -> bytes:
    """ServerMessage{<oneof tag>: Batch{repeated field 1: entries, then any other batch fields}}, by
    concatenation."""
    body = b"".join(entries) + trailer
    return tag + varint(len(body)) + body


def wrap_json(key: str, inner: str, parts: Iterable[str], extra: str = "") -> str:
    return '{"' + key + '":{"' + inner + '":[' + ",".join(parts) + "]" + extra + "}}"


def entry(message_bytes: bytes) -> bytes:
    return TAG_REPEATED_1 + varint(len(message_bytes)) + message_bytes


def entry_body(e: bytes) -> bytes:
    """The message inside an ``entry``: past its tag and its length's varint."""
    i = 1
    while e[i] & 0x80:
        i += 1
    return e[i + 1:]


def build_quote(books: BookSource, locate: int) -> pb.Quote:
    return read_quote(books, locate).to_pb()


_INT64_TYPES = frozenset((FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
                          FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64))
_INT32_TYPES = frozenset((FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_SINT32,
                          FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32))


def _flat_fields(descriptor: Descriptor) -> list[tuple[str, str, str]] | None:
    """(attribute, '"jsonName": ', kind) per field of a message of only implicit-presence strings, integers
    and bools (Quote, Trade); None for anything else, which keeps protobuf's own JSON printer."""
    out = []
    for f in descriptor.fields:
        if f.is_repeated or f.has_presence or f.containing_oneof is not None:
            return None
        if f.type == FieldDescriptor.TYPE_STRING:
            kind = "str"
        elif f.type in _INT64_TYPES:
            kind = "int64"
        elif f.type in _INT32_TYPES:
            kind = "int32"
        elif f.type == FieldDescriptor.TYPE_BOOL:
            kind = "bool"
        else:
            return None
        out.append((f.name, json.dumps(f.json_name) + ": ", kind))
    return out


_FLAT: dict[str, list[tuple[str, str, str]] | None] = {}


def to_json(message: Any) -> str:
    """Canonical proto3 JSON, exactly as ``json_format.MessageToJson(message, indent=None)`` prints it.

    Flat messages (a Quote, a Trade) are printed here, about three times faster than protobuf's
    generic printer, which matters because JSON clients need every changed symbol in that form each flush.
    """
    name = message.DESCRIPTOR.full_name
    if name not in _FLAT:
        _FLAT[name] = _flat_fields(message.DESCRIPTOR)
    fields = _FLAT[name]
    if fields is None:
        return str(json_format.MessageToJson(message, indent=None))
    parts = []
    for attr, key, kind in fields:
        value = getattr(message, attr)
        if not value:
            continue  # proto3 JSON leaves out fields at their default
        if kind == "int64":
            parts.append(key + '"' + str(value) + '"')
        elif kind == "str":
            # tickers need no escaping; anything else goes through json.dumps, as protobuf's printer does
            parts.append(key + ('"' + value + '"' if value.isascii() and value.isalnum() else json.dumps(value)))
        elif kind == "bool":
            parts.append(key + "true")
        else:
            parts.append(key + str(value))
    return "{" + ", ".join(parts) + "}"




TAG_HEARTBEAT = b"\x22"  # ServerMessage.heartbeat = 4


def liveness_entry(liveness: pb.Liveness) -> bytes:
    """A Liveness as an entry of Heartbeat.symbols (field 3): encoded once per symbol per heartbeat."""
    body = liveness.SerializeToString()
    return b"\x1a" + varint(len(body)) + body


def heartbeat_frame(server_time_ns: int, resume_token: str, symbols: Sequence[bytes | str],
                    json_mode: bool, tier: int = 0, max_rate_hz: float = 0.0) -> bytes | str:
    """One client's Heartbeat: its own token and conflation tier (``fanout.tiers``) around the shared Liveness
    entries (``liveness_entry`` bytes, or their ``to_json`` text in JSON mode); byte-identical to protobuf's own
    serialization."""
    if json_mode:
        parts = ['"serverTimeNs":"' + str(server_time_ns) + '"'] if server_time_ns else []
        if resume_token:
            parts.append('"resumeToken":' + json.dumps(resume_token))
        if symbols:
            parts.append('"symbols":[' + ",".join(str(s) for s in symbols) + "]")
        if tier:
            parts.append('"tier":' + str(tier))
        if max_rate_hz:
            parts.append('"maxRateHz":' + repr(float(max_rate_hz)))
        return '{"heartbeat":{' + ",".join(parts) + "}}"
    body = b"\x08" + varint(server_time_ns) if server_time_ns else b""
    if resume_token:
        token = resume_token.encode()
        body += b"\x12" + varint(len(token)) + token
    body += b"".join(s for s in symbols if isinstance(s, bytes))
    if tier:
        body += b"\x20" + varint(tier)
    if max_rate_hz:
        body += b"\x29" + struct.pack("<d", max_rate_hz)
    return TAG_HEARTBEAT + varint(len(body)) + body


def build_depth(books: BookSource, locate: int) -> pb.Depth:
    return read_depth(books, locate, DEPTH_LEVELS).to_pb()


BatchBuild = Callable[[npt.NDArray[np.int64]], tuple[bytes, npt.NDArray[np.int64], npt.NDArray[np.bool_]]]


class EntryCache:
    """Per locate: the newest message's entry bytes and (lazily) its JSON, with the version they were built at.

    ``build`` makes the message of one locate from the books (a Quote, a Depth); it runs once per changed
    symbol per flush, whatever the number of subscribers. Snapshots take the same bytes (``current``): a symbol
    is encoded again only when its version moved, so subscribing (and re-subscribing, as a hostile client can
    many times a second) costs a lookup per symbol, not an encoding.

    ``batch`` (with ``versions``, ``exchange_time`` and ``parse``), when given, encodes a whole refresh in one
    call (``fanout.quote_kernel``: the entries joined, where each ends, which it left out); ``build`` then
    serves only the symbols it left out, and a JSON client's text is printed from the entry's own message
    (``parse``), so it says exactly what the bytes say.
    """

    def __init__(self, build: Callable[[int], Any], size: int, *, batch: BatchBuild | None = None,
                 versions: npt.NDArray[np.int64] | None = None,
                 exchange_time: npt.NDArray[np.int64] | None = None,
                 parse: Callable[[bytes], Any] | None = None) -> None:
        self.build = build
        self.batch = batch
        self._versions = versions
        self._exchange_time = exchange_time
        self._parse = parse
        self.entries: list[bytes] = [b""] * size
        self.lengths: npt.NDArray[np.int64] = np.zeros(size, np.int64)  # len(entries[loc])
        self.seq_of: npt.NDArray[np.int64] = np.zeros(size, np.int64)
        self.exchange_time: npt.NDArray[np.int64] = np.zeros(size, np.int64)
        self.built: npt.NDArray[np.bool_] = np.zeros(size, np.bool_)  # entries[loc] was ever encoded
        self._json: dict[int, str] = {}
        self._messages: dict[int, Any] = {}

    def refresh(self, locates: Sequence[int] | npt.NDArray[np.int64]) -> int:
        """Re-encode these symbols from the books (once each); returns how many were encoded."""
        if self.batch is not None and len(locates):
            return self._refresh_batch(np.asarray(locates, np.int64))
        n = 0
        for loc in locates.tolist() if isinstance(locates, np.ndarray) else locates:
            self._build_one(loc)
            n += 1
        return n

    def _build_one(self, loc: int) -> None:
        m = self.build(loc)
        self._messages[loc] = m
        e = self.entries[loc] = entry(m.SerializeToString())
        self.lengths[loc] = len(e)
        self.seq_of[loc] = m.seq
        self.exchange_time[loc] = m.exchange_time_ns
        self.built[loc] = True
        self._json.pop(loc, None)

    def _refresh_batch(self, locs: npt.NDArray[np.int64]) -> int:
        assert self.batch is not None and self._versions is not None and self._exchange_time is not None
        blob, ends, bad = self.batch(locs)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1]
        entries = self.entries
        locs_l = locs.tolist()
        for loc, a, b in zip(locs_l, starts.tolist(), ends.tolist(), strict=True):
            entries[loc] = blob[a:b]
        self.lengths[locs] = ends - starts
        self.seq_of[locs] = self._versions[locs]
        self.exchange_time[locs] = self._exchange_time[locs]
        self.built[locs] = True
        if self._json or self._messages:  # JSON clients, or a symbol the kernel left out: drop the old texts
            for loc in locs_l:
                self._json.pop(loc, None)
                self._messages.pop(loc, None)
        if bad.any():
            for loc in locs[bad].tolist():
                self._build_one(loc)
        return len(locs_l)

    def current(self, locates: Sequence[int], versions: npt.NDArray[np.int64]) -> int:
        """Make these symbols' entries those of their version in ``versions`` (the books' own): encode only the
        ones never built or built at another version. Returns how many were encoded."""
        locs = np.asarray(locates, np.int64)
        stale = locs[~self.built[locs] | (self.seq_of[locs] != versions[locs])]
        return self.refresh(stale) if len(stale) else 0

    def json(self, locate: int) -> str:
        text = self._json.get(locate)
        if text is None:
            m = self._messages.get(locate)
            if m is None:
                if self._parse is not None and self.built[locate]:
                    m = self._parse(entry_body(self.entries[locate]))
                else:
                    m = self.build(locate)
            text = self._json[locate] = to_json(m)
        return text


class SymbolPrints(NamedTuple):
    """One symbol's prints of one flush, each encoded once: joined (the usual frame), and one by one with its
    trade_seq (a resumed client is sent only those past what its replay gave)."""

    blob: bytes          # every Trade entry, concatenated
    json: list[str]      # each Trade's JSON
    entries: list[bytes]
    trade_seqs: list[int]


class TradeEncoder:
    """Groups one flush's trade prints by symbol and encodes each symbol's prints once.

    Every print is kept, however many a symbol had since the last flush: a loaded node flushes late and a
    flush then carries more, but a print left out here would be a hole in every watcher's trade_seq (and the
    watcher's position would already be past it, so not even a resume could give it back). The frame size is
    bounded by ``trade_batches`` instead."""

    def __init__(self, books: BookSource) -> None:
        self.books = books

    def encode(self, prints: TradePrints, wanted: npt.NDArray[np.int32]) -> dict[int, SymbolPrints]:
        """locate -> its prints (entries and JSON) for prints of symbols someone watches."""
        out: dict[int, tuple[list[bytes], list[str], list[int]]] = {}
        if len(prints.locate) == 0:
            return {}
        keep = np.flatnonzero(wanted[prints.locate] > 0)
        symbol_of = self.books.symbol_of
        for i in keep.tolist():
            loc = int(prints.locate[i])
            slot = out.get(loc)
            if slot is None:
                slot = out[loc] = ([], [], [])
            t = trade_message(symbol_of[loc] or "", prints, i)
            slot[0].append(entry(t.SerializeToString()))
            slot[1].append(to_json(t))
            slot[2].append(t.trade_seq)
        return {loc: SymbolPrints(b"".join(e), j, e, n) for loc, (e, j, n) in out.items()}


def trade_batches(parts: Sequence[SymbolPrints], json_mode: bool, stamp: SendTime) -> list[bytes | str]:
    """One subscriber's prints of one flush as ``TradeBatch`` frames, in order: one frame, or (a burst) several
    of at most ``TRADE_FRAME_PRINTS`` prints each, so no frame grows past what a client's WebSocket takes."""
    if sum(len(p.trade_seqs) for p in parts) <= TRADE_FRAME_PRINTS:
        if json_mode:
            return [wrap_json("trades", "trades", (j for p in parts for j in p.json), stamp.json)]
        return [wrap(TAG_TRADES, (p.blob for p in parts), stamp.binary)]
    n = TRADE_FRAME_PRINTS
    if json_mode:
        texts = [j for p in parts for j in p.json]
        return [wrap_json("trades", "trades", texts[i:i + n], stamp.json) for i in range(0, len(texts), n)]
    entries = [e for p in parts for e in p.entries]
    return [wrap(TAG_TRADES, entries[i:i + n], stamp.binary) for i in range(0, len(entries), n)]


def trade_message(symbol: str, prints: TradePrints, i: int) -> pb.Trade:
    """Print ``i`` of ``prints`` as the protocol's Trade, with its context (trade_seq, aggressor, cross)."""
    return trade_pb(symbol, prints, i)
