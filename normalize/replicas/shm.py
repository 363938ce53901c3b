"""The shared-memory replica: ingest workers publish their books, fan-out and snapshot processes read them.

Layout (one ``multiprocessing.shared_memory`` block, numpy views by name): the book row
(``normalize.row``), the tickers (8 bytes per locate), the best ``DEPTH_LEVELS`` levels a side
(``depth[locate, side, level] = (price, size)``), which writer owns each locate, and one generation counter
per writer.

The publisher (``ShmPublisher``) applies packets through a ``Books`` whose row arrays ARE the block's, so a
packet's changes land in place with no copy; ``Books`` itself knows nothing of readers. Consistency without
locks is the publisher's: it makes its writer's generation odd before a packet and even after, and
publishes the names and depth of what the packet changed in between. A writer claims a locate (``owner``)
when its directory entry arrives, before it writes anything of the row.
A reader (``BookView.sync``) copies the rows that changed into its own arrays, then reads each row's owner
and checks that writer's generation again; rows of a writer that was mid-packet, or moved on, are copied
again, and if that writer stays busy they are left for the next sync (their versions stay unpublished, so
nothing is lost and no torn quote is ever handed on). Readers never block writers. The owner is read after
the copy: a writer that wrote a row during the copy had claimed it before, so the reader sees that writer
(reading it before the copy would see no owner yet, and take the first packet of a new locate half-written,
its name not yet published).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Sequence
from multiprocessing import resource_tracker, shared_memory
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ingest.messages import Message, StockDirectory
from ingest.partition import PartitionFilter

from ..book import ASK, BID, MAX_LOCATES, Books
from ..row import DEPTH_LEVELS, FIELD_NAMES, ROW_FIELDS, BookRow, bind_row, new_row
from ..status import M_VERSION, MARKET_FIELDS, StatusDiff, StatusEvent, new_market
from ..trades import TradePrints, TradeRing

if TYPE_CHECKING:
    from ..kernel import KernelBooks

_CREATED_HERE: set[str] = set()  # blocks this process created (and so unlinks)
MAX_WRITERS = 64
# per writer, the last prints and broken trades it applied (TradePrints columns), for readers that build bars
# and serve the trades channel; a reader that falls further behind than a ring is told how many it lost
PRINT_RING = 4096
BREAK_RING = 256
_RINGS = ("prints", "breaks")  # not zero-filled at creation: a fresh block is zeros, and totals say what is valid


class _Field(NamedTuple):
    name: str
    dtype: np.dtype[np.generic]
    shape: tuple[int, ...]


def _layout(n: int) -> list[_Field]:
    """The book row, then what only this replica carries."""
    return [*(_Field(f.name, f.dtype, (n,)) for f in ROW_FIELDS),
            _Field("depth", np.dtype(np.int64), (n, 2, DEPTH_LEVELS, 2)),
            _Field("generation", np.dtype(np.int64), (MAX_WRITERS,)),
            # each writer's feed session (its books' trade_seq numbering), for readers' resume tokens
            _Field("epochs", np.dtype(np.int64), (MAX_WRITERS,)),
            _Field("names", np.dtype("S8"), (n,)),
            _Field("owner", np.dtype(np.int16), (n,)),
            _Field("prints", np.dtype(np.int64), (MAX_WRITERS, len(TradePrints._fields), PRINT_RING)),
            _Field("prints_total", np.dtype(np.int64), (MAX_WRITERS,)),
            _Field("breaks", np.dtype(np.int64), (MAX_WRITERS, len(TradePrints._fields), BREAK_RING)),
            _Field("breaks_total", np.dtype(np.int64), (MAX_WRITERS,)),
            # the market-wide status (``normalize.status``), one row per writer: each applies every market message
            _Field("market", np.dtype(np.int64), (MAX_WRITERS, MARKET_FIELDS))]


class SharedBookState:
    """The shared block and named numpy views into it."""

    def __init__(self, shm: shared_memory.SharedMemory, n: int, owner: bool) -> None:
        self.shm = shm
        self.name = shm.name
        self.size = n
        self._owner = owner
        self.arrays: dict[str, npt.NDArray[np.generic]] = {}
        offset = 0
        for f in _layout(n):
            count = int(np.prod(f.shape))
            arr: npt.NDArray[np.generic] = np.ndarray(f.shape, dtype=f.dtype, buffer=shm.buf, offset=offset)
            self.arrays[f.name] = arr
            offset += count * f.dtype.itemsize
            offset = (offset + 63) // 64 * 64  # keep every array cache-line aligned

    @staticmethod
    def nbytes(n: int) -> int:
        return sum((int(np.prod(f.shape)) * f.dtype.itemsize + 63) // 64 * 64 for f in _layout(n))

    @classmethod
    def create(cls, name: str | None = None, n: int = MAX_LOCATES) -> SharedBookState:
        shm = shared_memory.SharedMemory(name=name, create=True, size=cls.nbytes(n))
        _CREATED_HERE.add(shm.name)
        state = cls(shm, n, owner=True)
        for name, arr in state.arrays.items():
            if name not in _RINGS:
                # bytewise: ``names[...] = 0`` would store the ticker b"0" (numpy converts 0 to bytes as text)
                arr.view(np.uint8)[...] = 0
        state.arrays["owner"][:] = -1
        return state

    @classmethod
    def attach(cls, name: str, n: int = MAX_LOCATES) -> SharedBookState:
        shm = shared_memory.SharedMemory(name=name, create=False)
        if name not in _CREATED_HERE:
            # Python < 3.13 registers attached segments with the resource tracker, which would unlink the
            # block when this process exits although its creator still serves it: only the creator owns it.
            with contextlib.suppress(Exception):
                resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
        return cls(shm, n, owner=False)

    def close(self) -> None:
        """Unlink the block (creator only), then unmap it once no view into it is left."""
        if self._owner:
            with contextlib.suppress(FileNotFoundError):
                self.shm.unlink()
            self._owner = False
        self.arrays.clear()
        with contextlib.suppress(BufferError):  # numpy views still alive: the mapping goes with the process
            self.shm.close()


class ShmPublisher:
    """The writer side: one partition's books, published into the block as writer number ``writer``.

    The feed handler's sink and recovery hooks (``apply_batch``, ``set_stale_all``, ``rebuild``) go through
    here: each runs under the writer's odd generation, claims the locates of its directory entries before
    applying anything, and ends by publishing the tickers and depth of the locates it changed, so a reader
    never takes a row that is half one packet and half the next.
    """

    def __init__(self, state: SharedBookState, writer: int, *, trade_capacity: int = 65_536,
                 batched: bool = False, partition: PartitionFilter | None = None) -> None:
        """``batched``: the books are a ``KernelBooks`` (the numba kernel) and ``apply_bytes`` takes whole
        undecoded blocks, as a one-process node's default path does (the plain engine costs several times
        as much per message: at 100,000 msg/s it needs more than a core and falls behind); with ``partition``,
        of every symbol, the kernel applying only that partition's messages (``KernelBooks(partition=...)``).
        A plain publisher is given decoded messages already filtered (``FeedSession(partition=...)``)."""
        if not 0 <= writer < MAX_WRITERS:
            raise ValueError(f"writer must be 0..{MAX_WRITERS - 1}, not {writer}")
        a = state.arrays
        rows = {name: a[name] for name in FIELD_NAMES}
        self.books: Books
        self._kernel: KernelBooks | None = None
        if batched:
            from ..kernel import KernelBooks, warm_up

            warm_up()
            self.books = self._kernel = KernelBooks(trade_capacity=trade_capacity, arrays=rows,
                                                    market=a["market"][writer], partition=partition)
            # what this writer last published of its rows: depth (by depth_seq) and names (the kernel's packed
            # names), so a block's changes are found by comparing arrays instead of walking its messages
            self._depth_published = self.books.depth_seq.copy()
            self._names_published = self._kernel.packed_names.copy()
        else:
            self.books = Books(trade_capacity=trade_capacity, arrays=rows, market=a["market"][writer])
        self.writer = writer
        a["epochs"][writer] = self.books.session_epoch
        self._gen: npt.NDArray[np.int64] = a["generation"]  # type: ignore[assignment]
        self._depth: npt.NDArray[np.int64] = a["depth"]  # type: ignore[assignment]
        self._names = a["names"]
        self._owner = a["owner"]
        self._size = state.size
        self._published_name: list[str | None] = [None] * state.size
        self._rings = ((a["prints"][writer], a["prints_total"], self.books.trades_since),
                       (a["breaks"][writer], a["breaks_total"], self.books.breaks_since))
        self._ring_cursors = [self.books.trades_total, self.books.breaks_total]

    def apply(self, msg: Message) -> None:
        self.apply_batch([msg])

    def apply_batch(self, msgs: Sequence[Message]) -> None:
        """Apply one packet's messages, then publish the names and depth of the locates they touched."""
        books, gen, w = self.books, self._gen, self.writer
        gen[w] += 1
        try:
            dseq = books.depth_seq
            before = {m.locate: dseq.item(m.locate) for m in msgs if 0 < m.locate < MAX_LOCATES}
            self._claim(msgs)
            books.apply_batch(msgs)
            self._publish([loc for loc, old in before.items() if dseq.item(loc) != old], before)
        finally:
            gen[w] += 1
        self._ship_prints()

    def apply_bytes(self, data: bytes | bytearray | memoryview) -> int:
        """Batched: frame, decode and apply a block of length-prefixed ITCH messages in one kernel call, then
        claim, and publish the names and depth of, whatever moved (all under the writer's odd generation: a
        reader that copies a row before its claim sees no owner while a writer is busy, and takes it again)."""
        kernel = self._kernel
        if kernel is None:
            raise RuntimeError("apply_bytes needs a batched publisher (ShmPublisher(..., batched=True))")
        gen, w = self._gen, self.writer
        gen[w] += 1
        try:
            consumed = kernel.apply_bytes(data)
            hi = kernel.high_locate + 1
            mine = kernel.mine[:hi]
            claims = np.flatnonzero(mine & (self._owner[:hi] != w))
            if len(claims):
                self._owner[claims] = w
            depth = np.flatnonzero((kernel.depth_seq[:hi] != self._depth_published[:hi]) & mine)
            if len(depth):
                kernel.write_depth(depth, self._depth)
                self._depth_published[depth] = kernel.depth_seq[depth]
            names = np.flatnonzero(kernel.packed_names[:hi] != self._names_published[:hi])
            if len(names):
                self._publish((), names.tolist())
                self._names_published[names] = kernel.packed_names[names]
        finally:
            gen[w] += 1
        self._ship_prints()
        return consumed

    def _ship_prints(self) -> None:
        """Copy the prints and breaks this packet recorded into the writer's rings, then move its totals (a
        reader takes rows below the total it read, and checks afterwards that none was overwritten)."""
        w = self.writer
        for i, (ring, totals, since) in enumerate(self._rings):
            prints, self._ring_cursors[i], lost = since(self._ring_cursors[i])
            n = int(prints.locate.shape[0])
            if not n and not lost:
                continue
            cap = ring.shape[1]
            start = int(totals[w]) + lost
            cols = np.stack(prints)
            if n > cap:
                start += n - cap
                cols = cols[:, n - cap:]
                n = cap
            ring[:, (start + np.arange(n)) % cap] = cols
            totals[w] = start + n

    def set_stale_all(self, stale: bool) -> None:
        gen, w = self._gen, self.writer
        gen[w] += 1
        try:
            self.books.set_stale_all(stale)
        finally:
            gen[w] += 1

    def rebuild(self, snapshot: Iterable[Message]) -> None:
        """``Books.rebuild``, then every changed locate's depth and any new names published."""
        books, gen, w = self.books, self._gen, self.writer
        snapshot = list(snapshot)
        gen[w] += 1
        try:
            before = books.depth_seq.copy()
            self._claim(snapshot)
            books.rebuild(snapshot)
            changed = np.flatnonzero(books.depth_seq != before).tolist()
            self._publish(changed, range(1, books.high_locate + 1))
            if self._kernel is not None:
                self._depth_published[:] = books.depth_seq
                self._names_published[:] = self._kernel.packed_names
        finally:
            gen[w] += 1

    def _claim(self, msgs: Iterable[Message]) -> None:
        """Own the locates of these directory entries before a byte of their rows is written (see the module
        docstring: a reader that finds a row changed must find its writer)."""
        owner, w, n = self._owner, self.writer, self._size
        for m in msgs:
            if type(m) is StockDirectory and 0 < m.locate < n and owner[m.locate] != w:
                owner[m.locate] = w

    def _publish(self, depth_changed: Iterable[int], touched: Iterable[int]) -> None:
        levels, depth = self.books.levels, self._depth
        for locate in depth_changed:
            for side in (BID, ASK):
                top = levels(locate, side, DEPTH_LEVELS)
                row = depth[locate, side]
                row[:] = 0
                if top:
                    row[: len(top)] = top
        symbol_of, published = self.books.symbol_of, self._published_name
        for locate in touched:
            name = symbol_of[locate]
            if name is not None and name != published[locate]:
                self._names[locate] = name.encode("ascii", "replace")[:8]
                published[locate] = name


class BookView(BookRow):
    """What fan-out and snapshots read, synced from shared memory: the reader side of ``ShmPublisher``.

    Its arrays are this process's own copies, refreshed by ``sync`` (call it before each flush), so the
    fan-out's version diffing and encoding work exactly as over an in-process ``Books``.
    """

    def __init__(self, state: SharedBookState, *, trade_capacity: int = 65_536, break_capacity: int = 4_096
                 ) -> None:
        self.state = state
        n = state.size
        a = state.arrays
        bind_row(self, new_row(n))
        self.depth: npt.NDArray[np.int64] = np.zeros((n, 2, DEPTH_LEVELS, 2), np.int64)
        self.symbol_of: list[str | None] = [None] * n
        self.locate_of: dict[str, int] = {}
        self.high_locate = 0
        self.market = new_market()
        self._status_diff = StatusDiff()
        self.counters: dict[str, int] = {"sync_retries": 0, "rows_deferred": 0}
        self._shared = a
        self._fields = [(getattr(self, f), a[f]) for f in FIELD_NAMES]
        # the writers' prints and breaks, gathered here (from now on) for the trades channel and the bars
        self._trades = TradeRing(trade_capacity)
        self._breaks = TradeRing(break_capacity)
        self._ring_cursors = [a["prints_total"].copy(), a["breaks_total"].copy()]
        self._epochs: npt.NDArray[np.int64] = a["epochs"]  # type: ignore[assignment]
        self.counters.update(prints_lost=0, breaks_lost=0)
        self._synced: npt.NDArray[np.int64] | None = None  # the writers' marks the last whole sync began at

    def sync(self) -> int:
        """Copy every row whose version moved since the last sync; returns how many rows were copied.

        A sync that finds every writer where the last whole sync left it (same generations, same ring totals)
        does nothing: an idle reader polling often costs a comparison of a few counters, not a scan of the
        block."""
        a = self._shared
        gen: npt.NDArray[np.int64] = a["generation"]  # type: ignore[assignment]
        # the writers' rings move after their generation (a packet's prints are shipped once it is applied)
        mark = np.concatenate((gen, a["prints_total"], a["breaks_total"]))
        if self._synced is not None and np.array_equal(mark, self._synced):
            return 0
        self._sync_market()
        moved = np.flatnonzero((a["seq"] != self.seq) | (a["depth_seq"] != self.depth_seq)
                               | (a["status_seq"] != self.status_seq))
        copied = 0
        for _ in range(4):
            if not len(moved):
                break
            before = gen.copy()
            scratch = [shared[moved] for _, shared in self._fields]
            depth = a["depth"][moved]
            names = a["names"][moved]
            # after the copy: whoever wrote a row during it had claimed it by now
            owners: npt.NDArray[np.int16] = a["owner"][moved]  # type: ignore[assignment]
            after = gen.copy()
            # rows of a writer that was mid-packet, or moved on, during the copy may be torn: take them again
            busy = np.flatnonzero((before != after) | ((before & 1) == 1))
            # (a row no writer has claimed, written before its directory entry came, could be any busy one's)
            torn = np.isin(owners, busy) | ((owners < 0) & (len(busy) > 0))
            clean = ~torn
            rows = moved[clean]
            for (local, _), values in zip(self._fields, scratch, strict=True):
                local[rows] = values[clean]
            self.depth[rows] = depth[clean]
            self._learn_names(rows, names[clean])
            copied += len(rows)
            moved = moved[torn]
            if len(moved):
                self.counters["sync_retries"] += 1
        # rows still busy keep their previous version: the next sync takes them whole
        self.counters["rows_deferred"] += len(moved)
        self._gather(0, self._trades, "prints")
        self._gather(1, self._breaks, "breaks")
        # taken whole only if no writer was mid-packet when it began and nothing was left for later
        self._synced = mark if not len(moved) and not (mark[:len(gen)] & 1).any() else None
        return copied

    def _sync_market(self) -> None:
        """The newest market status among the writers that were not mid-packet while it was copied (every
        writer applies every market message, so the furthest along is the market's current state)."""
        a = self._shared
        gen: npt.NDArray[np.int64] = a["generation"]  # type: ignore[assignment]
        before = gen.copy()
        rows = a["market"].copy()
        after = gen.copy()
        clean = (before == after) & ((before & 1) == 0)
        versions = np.where(clean, rows[:, M_VERSION], -1)
        w = int(np.argmax(versions))
        if versions[w] > self.market[M_VERSION]:
            self.market[:] = rows[w]

    def _gather(self, k: int, local: TradeRing, name: str) -> None:
        """New rows of every writer's ring ``name`` into ``local``; rows overwritten before or while they were
        read are counted lost, never taken torn."""
        a = self._shared
        ring, totals, cursors = a[name], a[name + "_total"], self._ring_cursors[k]
        cap = ring.shape[2]
        for w in np.flatnonzero(totals != cursors).tolist():
            end = int(totals[w])
            cur = int(cursors[w])
            if end < cur:  # a writer that started again (its rings restart at 0)
                cur = 0
            start = max(cur, end - cap)
            rows = ring[w][:, (start + np.arange(end - start)) % cap].copy()
            after = int(totals[w])
            torn = max(0, after - cap - start)  # overwritten while copied: the oldest rows
            if torn:
                rows = rows[:, min(torn, rows.shape[1]):]
            lost = (start - cur) + min(torn, end - start)
            if lost:
                self.counters[name + "_lost"] += lost
            if rows.shape[1]:
                local.extend(TradePrints(*rows))
            cursors[w] = end

    def _learn_names(self, rows: npt.NDArray[np.int64], names: npt.NDArray[Any]) -> None:
        symbol_of = self.symbol_of
        for r, raw in zip(rows.tolist(), names.tolist(), strict=True):
            if raw and symbol_of[r] is None:
                name = raw.decode("ascii").rstrip(" ")
                symbol_of[r] = name
                self.locate_of[name] = r
                if r > self.high_locate:
                    self.high_locate = r

    # ------------------------------------------------------------------ the Books read API
    def levels(self, locate: int, side: int, n: int) -> list[tuple[int, int]]:
        rows = self.depth[locate, side, :n]
        return [(int(p), int(s)) for p, s in rows.tolist() if s > 0]

    @property
    def trades_total(self) -> int:
        return self._trades.total

    def trades_since(self, cursor: int) -> tuple[TradePrints, int, int]:
        """The writers' prints gathered by ``sync`` (per writer in order; writers own disjoint symbols)."""
        return self._trades.since(cursor)

    @property
    def session_epoch(self) -> int:
        """The writers' feed sessions as one number: a restarted (or new) writer changes it, so resume tokens
        issued before say ``epoch_changed`` rather than compare trade_seq numbers of two sessions."""
        digest = hashlib.blake2b(self._epochs.tobytes(), digest_size=8).digest()
        return int.from_bytes(digest, "big") >> 1

    @property
    def breaks_total(self) -> int:
        return self._breaks.total

    def breaks_since(self, cursor: int) -> tuple[TradePrints, int, int]:
        return self._breaks.since(cursor)

    @property
    def status_total(self) -> int:
        return self._status_diff.total

    def status_since(self, cursor: int) -> tuple[list[StatusEvent], int, int]:
        """Status crosses processes as state: one event per symbol whose status moved since the last call."""
        return self._status_diff.since(self, self.symbol_of, self.market, self.high_locate)
