"""normalize: decoded ITCH messages in, books out.

Takes: ``ingest.messages`` NamedTuples in feed order; ``Books.apply_batch`` is the feed handler's sink (one
MoldUDP64 packet's messages per call), ``Books.rebuild`` takes a snapshot after a skipped gap.
Gives: per-symbol top of book (best bid/ask price and size, last trade, cumulative volume, exchange time,
halted/stale/known flags) in numpy int64/bool arrays indexed by stock locate; a per-symbol version ``seq``
(and ``depth_seq`` for price levels) that consumers diff against their own copy to find what changed; a
bounded ring of trade prints read by cursor (``trades_since``); price levels for depth (``levels``); trading
status per symbol (row fields) and market wide (``market``), with every status event in a bounded log read by
cursor (``status_since``).
Guarantees: exact integer prices (4 implied decimals, never floats); a version never goes backwards and
moves once per message that changed what it covers; a bad message (unknown or reused order reference,
bad side, shares or price, impossible locate) is counted in ``Books.counters`` and changes nothing, and
``apply``/``apply_batch`` never raise on feed content. Pure: no I/O, no asyncio (but ``replicas``).

Modules: ``row`` (the published row, declared once), ``source`` (``BookSource``, the read side every edge
is written against), ``quote`` (the quote view of one locate and all its forms: protobuf, JSON record,
Redis hash), ``book`` (``Books``, the reference books), ``kernel``/``kernel_loop`` (``KernelBooks``, the
batched numba path), ``trades`` (the print ring), ``status`` (the ITCH events that gate trading, applied
and viewed), ``bars`` (1 s and 1 m OHLCV bars from the prints, with broken trades, per message or per
batch; its parts ``bar_types``, ``bar_history``, ``bar_print_log``, ``bar_messages``; ``bar_feed`` runs it on
a node, ``bar_wire`` puts its bars on the wire), ``replicas.shm`` and ``replicas.redis`` (the same books
published to shared memory or Redis, each a publisher and a reader).
"""

from .book import ASK, BID, MAX_LOCATES, Books
from .trades import TradePrints

__all__ = ["ASK", "BID", "MAX_LOCATES", "Books", "TradePrints"]
