"""A tiny, deterministic ITCH session that touches every message kind the books handle.

For warming compiled kernels (every branch compiled before the first live packet) and for tests that need a
complete but small stream. Pure data: no randomness, no clock.
"""

from __future__ import annotations

from ingest import messages as im


def every_kind() -> list[im.Message]:
    """A few hundred bytes of session: every message kind, two symbols, 40 orders (enough to outgrow tiny tables)."""
    out: list[im.Message] = [im.SystemEvent(0, 0, 1, "Q")]
    for loc in (1, 2):
        out.append(im.StockDirectory(loc, 0, 1, f"WARM{loc}", "Q", "N", 100, "N", "C", "Z", "P", "N", "N", "1", "N",
                                     0, "N"))
        out.append(im.TradingAction(loc, 0, 1, f"WARM{loc}", "T", " ", ""))
    for ref in range(1, 41):
        loc, side = 1 + ref % 2, "B" if ref % 4 < 2 else "S"
        price = 1_000_000 + (-ref if side == "B" else ref) * 100
        out.append(im.AddOrder(loc, 0, 2, ref, side, 100, f"WARM{loc}", price, "MPID" if ref % 5 == 0 else None))
    out += [im.OrderExecuted(1, 0, 3, 2, 10, 1), im.OrderExecutedWithPrice(2, 0, 3, 1, 10, 2, "Y", 999_900),
            im.OrderCancel(1, 0, 3, 4, 10), im.OrderReplace(2, 0, 3, 3, 41, 50, 1_000_500),
            im.OrderDelete(1, 0, 3, 6), im.Trade(1, 0, 4, 0, "B", 100, "WARM1", 1_000_000, 3),
            im.CrossTrade(2, 0, 4, 500, "WARM2", 1_000_000, 4, "O"), im.BrokenTrade(1, 0, 5, 3),
            im.TradingAction(1, 0, 6, "WARM1", "H", " ", "")]
    # the other trading status messages: Reg SHO, a LULD pause's collar, IPO quoting period, operational halt,
    # circuit breaker levels and breach, and the end of market hours
    out += [im.RegSho(2, 0, 7, "WARM2", "1"), im.TradingAction(2, 0, 7, "WARM2", "P", " ", "LUDP"),
            im.LuldAuctionCollar(2, 0, 7, "WARM2", 1_000_000, 1_050_000, 950_000, 0),
            im.TradingAction(2, 0, 8, "WARM2", "T", " ", ""),
            im.IpoQuotingPeriod(1, 0, 8, "WARM1", 36_000, "A", 1_000_000),
            im.OperationalHalt(2, 0, 8, "WARM2", "Q", "H"), im.OperationalHalt(2, 0, 9, "WARM2", "Q", "T"),
            im.MwcbDeclineLevel(0, 0, 9, 5_000_000_000_000, 4_600_000_000_000, 4_000_000_000_000),
            im.MwcbStatus(0, 0, 9, "1"), im.SystemEvent(0, 0, 10, "M")]
    return out
