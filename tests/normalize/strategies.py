"""Hypothesis strategies shared by the book property tests (Books against a reference, KernelBooks against
Books): random valid-and-invalid ITCH message sequences over a few locates and order references."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from ingest import messages as im
from tests.conftest import directory as stock_directory

refs = st.integers(1, 12)  # few references, so most operations hit live orders (and some do not)
prices = st.integers(99, 103).map(lambda p: p * 10_000) | st.just(0)
shares = st.integers(1, 400) | st.just(0)


def directory(loc: int) -> im.StockDirectory:
    return stock_directory(loc, f"S{loc}", timestamp=0)


def messages(locate_values: Sequence[int], *, attribution: bool = False,
             more: bool = False) -> st.SearchStrategy[im.Message]:
    """One message of any kind the books handle. ``attribution`` adds MPIDs (type F); ``more`` adds system
    events, directory entries (renames, late names) and every other trading status message (valid and not) to
    the mix."""
    locates = st.sampled_from(tuple(locate_values))
    mpids = st.sampled_from([None, "MPID"]) if attribution else st.just(None)
    kinds = [
        st.builds(lambda loc, ref, side, n, p, mpid: im.AddOrder(loc, 0, 1, ref, side, n, "X", p, mpid),
                  locates, refs, st.sampled_from("BBSSX"), shares, prices, mpids),
        st.builds(lambda ref, n, m: im.OrderExecuted(1, 0, 2, ref, n, m), refs, shares, st.integers(1, 99)),
        st.builds(lambda ref, n, pr, p: im.OrderExecutedWithPrice(1, 0, 3, ref, n, 5, pr, p), refs, shares,
                  st.sampled_from("YN"), prices),
        st.builds(lambda ref, n: im.OrderCancel(1, 0, 4, ref, n), refs, shares),
        st.builds(lambda ref: im.OrderDelete(1, 0, 5, ref), refs),
        st.builds(lambda old, new, n, p: im.OrderReplace(1, 0, 6, old, new, n, p), refs, refs, shares, prices),
        st.builds(lambda loc, n, p: im.Trade(loc, 0, 7, 0, "B", n, "X", p, 1), locates, shares, prices),
        st.builds(lambda loc, n, p: im.CrossTrade(loc, 0, 8, n, "X", p, 2, "O"), locates, st.integers(0, 50), prices),
        st.builds(lambda loc, s, r: im.TradingAction(loc, 0, 9, "X", s, " ", r), locates, st.sampled_from("THPQZ"),
                  st.sampled_from(["    ", "LUDP", "T1"])),
        st.builds(lambda m: im.BrokenTrade(1, 0, 10, m), st.integers(1, 99)),
    ]
    if more:
        kinds += [
            st.builds(lambda c: im.SystemEvent(0, 0, 11, c), st.sampled_from("OQMC")),
            st.builds(lambda loc, name, lot: stock_directory(loc, name, timestamp=12, round_lot=lot),
                      locates, st.sampled_from(["S1", "S2", "NEW"]), st.sampled_from([1, 100])),
            st.builds(lambda loc, a: im.RegSho(loc, 0, 13, "X", a), locates, st.sampled_from("012X")),
            st.builds(lambda loc, p, x: im.LuldAuctionCollar(loc, 0, 14, "X", p, p + 5_000, max(0, p - 5_000), x),
                      locates, prices, st.integers(0, 3)),
            st.builds(lambda loc, q: im.IpoQuotingPeriod(loc, 0, 15, "X", 34_200, q, 1_000_000), locates,
                      st.sampled_from("ACZ")),
            st.builds(lambda loc, mkt, a: im.OperationalHalt(loc, 0, 16, "X", mkt, a), locates, st.sampled_from("QB"),
                      st.sampled_from("HTZ")),
            st.builds(lambda lvl: im.MwcbDeclineLevel(0, 0, 17, lvl, lvl - 10**10, lvl - 2 * 10**10),
                      st.integers(10**11, 10**12)),
            st.builds(lambda c: im.MwcbStatus(0, 0, 18, c), st.sampled_from("1234")),
        ]
    return st.one_of(*kinds)
