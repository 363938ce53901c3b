"""Property: the numpy books equal a naive reference model after every message of any sequence.

The sequences mix valid and invalid messages: unknown and reused order references, over-executions, bad
sides, zero shares and prices, locates with no directory entry and locates that cannot exist, halts.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import messages as im
from normalize import MAX_LOCATES, Books

from .strategies import directory, messages

NAMED = (1, 2)  # have a directory entry
LOCATES = (1, 2, 3)  # 3 never does: applied and counted
message = messages((*LOCATES, 0, MAX_LOCATES))


class Reference:
    """Deliberately naive: a dict of orders, tops by brute force over every live order."""

    def __init__(self) -> None:
        self.orders: dict[int, tuple[int, int, int, int]] = {}
        self.last: dict[int, tuple[int, int]] = {}
        self.volume: dict[int, int] = defaultdict(int)
        self.halted: dict[int, bool] = defaultdict(bool)
        self.trading: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))  # (state, reason) as the row codes them
        self.prints: list[tuple[int, int, int]] = []

    def _print(self, loc: int, price: int, size: int) -> None:
        self.last[loc] = (price, size)
        self.volume[loc] += size
        self.prints.append((loc, price, size))

    def _take(self, ref: int, n: int) -> tuple[int, int] | None:
        o = self.orders.get(ref)
        if o is None or n <= 0:
            return None
        if n >= o[3]:
            del self.orders[ref]  # over-execution/cancel removes the order too
        else:
            self.orders[ref] = (o[0], o[1], o[2], o[3] - n)
        return o[0], o[2]

    def apply(self, m: im.Message) -> None:
        stock = isinstance(m, (im.AddOrder, im.Trade, im.CrossTrade, im.TradingAction)) and 0 < m.locate < MAX_LOCATES
        if isinstance(m, im.AddOrder):
            if stock and m.order_ref not in self.orders and m.side in "BS" and m.shares > 0 and m.price > 0:
                self.orders[m.order_ref] = (m.locate, "BS".index(m.side), m.price, m.shares)
        elif isinstance(m, im.OrderExecuted):
            t = self._take(m.order_ref, m.executed_shares)
            if t:
                self._print(t[0], t[1], m.executed_shares)
        elif isinstance(m, im.OrderExecutedWithPrice):
            if m.printable == "Y" and m.execution_price <= 0:
                return
            t = self._take(m.order_ref, m.executed_shares)
            if t and m.printable == "Y":
                self._print(t[0], m.execution_price, m.executed_shares)
        elif isinstance(m, im.OrderCancel):
            self._take(m.order_ref, m.cancelled_shares)
        elif isinstance(m, im.OrderDelete):
            self.orders.pop(m.order_ref, None)
        elif isinstance(m, im.OrderReplace):
            if (m.original_order_ref in self.orders and m.new_order_ref not in self.orders and m.shares > 0
                    and m.price > 0):
                loc, side, _, _ = self.orders.pop(m.original_order_ref)
                self.orders[m.new_order_ref] = (loc, side, m.price, m.shares)
        elif isinstance(m, im.Trade):
            if stock and m.shares > 0 and m.price > 0:
                self._print(m.locate, m.price, m.shares)
        elif isinstance(m, im.CrossTrade):
            if stock and m.shares > 0 and m.cross_price > 0:
                self._print(m.locate, m.cross_price, m.shares)
        elif isinstance(m, im.TradingAction):
            if stock and m.trading_state in "THPQ":
                self.halted[m.locate] = m.trading_state != "T"
                reason = int.from_bytes(m.reason.encode()[:4].rstrip(b" "), "big")  # ITCH pads it with spaces
                self.trading[m.locate] = (ord(m.trading_state), reason)

    def published(self, loc: int) -> tuple[int, ...]:
        bids = [o for o in self.orders.values() if o[0] == loc and o[1] == 0]
        asks = [o for o in self.orders.values() if o[0] == loc and o[1] == 1]
        bid = max((o[2] for o in bids), default=0)
        ask = min((o[2] for o in asks), default=0)
        return (bid, sum(o[3] for o in bids if o[2] == bid), ask, sum(o[3] for o in asks if o[2] == ask),
                *self.last.get(loc, (0, 0)), self.volume[loc], int(self.halted[loc]), *self.trading[loc])

    def depth(self, loc: int, side: int) -> list[tuple[int, int]]:
        agg: dict[int, int] = defaultdict(int)
        for o in self.orders.values():
            if o[0] == loc and o[1] == side:
                agg[o[2]] += o[3]
        return sorted(agg.items(), reverse=side == 0)


def published(b: Books, loc: int) -> tuple[int, ...]:
    return tuple(int(a[loc]) for a in (b.bid_price, b.bid_size, b.ask_price, b.ask_size, b.last_price,
                                       b.last_size, b.volume, b.halted, b.trading_state, b.trading_reason))


@settings(max_examples=300, deadline=None)
@given(st.lists(message, max_size=80), st.booleans())
def test_books_equal_reference(msgs: list[im.Message], batched: bool) -> None:
    books, ref = Books(trade_capacity=16), Reference()
    books.apply_batch([directory(loc) for loc in NAMED])
    state = {loc: (int(books.seq[loc]), published(books, loc)) for loc in LOCATES}
    depths: dict[int, tuple[int, object]] = {loc: (0, ([], [])) for loc in LOCATES}
    for m in msgs:
        if batched:
            books.apply_batch([m])
        else:
            books.apply(m)
        ref.apply(m)
        assert books.live_orders() == ref.orders
        for loc in LOCATES:
            now = published(books, loc)
            assert now == ref.published(loc), (m, loc)
            seq = int(books.seq[loc])
            # one version per message that changed something published, none otherwise
            assert seq - state[loc][0] == (now != state[loc][1]), (m, loc)
            state[loc] = (seq, now)
            depth = (books.levels(loc, 0, 99), books.levels(loc, 1, 99))
            assert depth == (ref.depth(loc, 0), ref.depth(loc, 1))
            dseq = int(books.depth_seq[loc])
            bumps, changed = dseq - depths[loc][0], depth != depths[loc][1]
            # one version per message that moved a level (a replace may put back exactly what it took)
            assert bumps == changed or (bumps == 1 and isinstance(m, im.OrderReplace)), (m, loc)
            depths[loc] = (dseq, depth)
    assert books.trades_total == len(ref.prints)
    prints, cursor, lost = books.trades_since(0)
    assert cursor == len(ref.prints) and lost == max(0, len(ref.prints) - 16)
    assert list(zip(prints.locate.tolist(), prints.price.tolist(), prints.size.tolist(), strict=True)) == \
        ref.prints[lost:]
    assert books.counters["messages"] == len(msgs) + len(NAMED)
    assert books.counters["unknown_message"] == 0
