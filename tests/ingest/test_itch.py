"""ITCH 5.0 byte vectors written field by field from the specification's layouts (not from our encoder)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import itch
from ingest import messages as im
from ingest.itch import ItchError


def u(n: int, width: int) -> bytes:
    return n.to_bytes(width, "big")


# Common header: Message Type (1), Stock Locate (2), Tracking Number (2), Timestamp (6).
TS = 0x3A9C_1234_5678  # an afternoon time in ns since midnight that uses all 6 timestamp bytes
HDR = lambda t, locate=0x0102, tracking=0x0304: t + u(locate, 2) + u(tracking, 2) + u(TS, 6)  # noqa: E731

VECTORS: list[tuple[bytes, im.Message]] = [
    (HDR(b"S", 0, 0) + b"O", im.SystemEvent(0, 0, TS, "O")),
    (HDR(b"R") + b"AAPL    " + b"Q" + b"N" + u(100, 4) + b"N" + b"C" + b"Z " + b"P" + b"N" + b"N" + b"1"
     + b"N" + u(0, 4) + b"N",
     im.StockDirectory(0x0102, 0x0304, TS, "AAPL", "Q", "N", 100, "N", "C", "Z", "P", "N", "N", "1", "N", 0, "N")),
    (HDR(b"H") + b"TSLA    " + b"H" + b" " + b"LUDP",
     im.TradingAction(0x0102, 0x0304, TS, "TSLA", "H", " ", "LUDP")),
    (HDR(b"A") + u(0x0102030405060708, 8) + b"B" + u(300, 4) + b"AAPL    " + u(1892500, 4),
     im.AddOrder(0x0102, 0x0304, TS, 0x0102030405060708, "B", 300, "AAPL", 1892500)),
    (HDR(b"F") + u(77, 8) + b"S" + u(100, 4) + b"NVDA    " + u(1200100, 4) + b"GSCO",
     im.AddOrder(0x0102, 0x0304, TS, 77, "S", 100, "NVDA", 1200100, "GSCO")),
    (HDR(b"E") + u(77, 8) + u(40, 4) + u(0xAABBCCDD, 8), im.OrderExecuted(0x0102, 0x0304, TS, 77, 40, 0xAABBCCDD)),
    (HDR(b"C") + u(77, 8) + u(40, 4) + u(9, 8) + b"Y" + u(1200000, 4),
     im.OrderExecutedWithPrice(0x0102, 0x0304, TS, 77, 40, 9, "Y", 1200000)),
    (HDR(b"X") + u(77, 8) + u(25, 4), im.OrderCancel(0x0102, 0x0304, TS, 77, 25)),
    (HDR(b"D") + u(77, 8), im.OrderDelete(0x0102, 0x0304, TS, 77)),
    (HDR(b"U") + u(77, 8) + u(78, 8) + u(500, 4) + u(1200200, 4),
     im.OrderReplace(0x0102, 0x0304, TS, 77, 78, 500, 1200200)),
    (HDR(b"P") + u(0, 8) + b"B" + u(250, 4) + b"MSFT    " + u(4200000, 4) + u(10, 8),
     im.Trade(0x0102, 0x0304, TS, 0, "B", 250, "MSFT", 4200000, 10)),
    (HDR(b"Q") + u(5_000_000_000, 8) + b"SPY     " + u(5600000, 4) + u(11, 8) + b"O",
     im.CrossTrade(0x0102, 0x0304, TS, 5_000_000_000, "SPY", 5600000, 11, "O")),
    (HDR(b"B") + u(10, 8), im.BrokenTrade(0x0102, 0x0304, TS, 10)),
    # the status messages (ITCH 5.0 sections 4.2.3-4.2.7 and 4.6): Reg SHO, MWCB decline levels (Price (8):
    # 8 implied decimals) and status, IPO quoting period (release time in SECONDS), LULD collar, operational halt
    (HDR(b"Y") + b"TSLA    " + b"1", im.RegSho(0x0102, 0x0304, TS, "TSLA", "1")),
    (HDR(b"V", 0, 0) + u(5_234_567_000_000, 8) + u(4_936_120_000_000, 8) + u(4_497_540_000_000, 8),
     im.MwcbDeclineLevel(0, 0, TS, 5_234_567_000_000, 4_936_120_000_000, 4_497_540_000_000)),
    (HDR(b"W", 0, 0) + b"2", im.MwcbStatus(0, 0, TS, "2")),
    (HDR(b"K") + b"ARM     " + u(34_200, 4) + b"A" + u(510_000, 4),
     im.IpoQuotingPeriod(0x0102, 0x0304, TS, "ARM", 34_200, "A", 510_000)),
    (HDR(b"J") + b"NVDA    " + u(1_200_000, 4) + u(1_260_000, 4) + u(1_140_000, 4) + u(2, 4),
     im.LuldAuctionCollar(0x0102, 0x0304, TS, "NVDA", 1_200_000, 1_260_000, 1_140_000, 2)),
    (HDR(b"h") + b"AAPL    " + b"Q" + b"H", im.OperationalHalt(0x0102, 0x0304, TS, "AAPL", "Q", "H")),
]

# Edge cases of the same layouts: blank one-byte codes stay a space, blank wide alpha fields decode to "",
# every header field at its maximum.
EDGE_VECTORS: list[tuple[bytes, im.Message]] = [
    (HDR(b"H", 0xFFFF, 0xFFFF) + b"ZVZZT   " + b"T" + b" " + b"    ",
     im.TradingAction(0xFFFF, 0xFFFF, TS, "ZVZZT", "T", " ", "")),
    (HDR(b"R", 7, 0) + b"GOOGL   " + b" " + b" " + u(1, 4) + b"Y" + b"A" + b"  " + b"T" + b" " + b" " + b" "
     + b" " + u(3, 4) + b"Y",
     im.StockDirectory(7, 0, TS, "GOOGL", " ", " ", 1, "Y", "A", "", "T", " ", " ", " ", " ", 3, "Y")),
    (b"D" + u(1, 2) + u(2, 2) + b"\xff" * 6 + b"\xff" * 8, im.OrderDelete(1, 2, (1 << 48) - 1, (1 << 64) - 1)),
    (HDR(b"S", 0, 0) + b"C", im.SystemEvent(0, 0, TS, "C")),
]

SPEC_LENGTHS = {"S": 12, "R": 39, "H": 25, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35,
                "P": 44, "Q": 40, "B": 19, "Y": 20, "V": 35, "W": 12, "K": 28, "J": 35, "h": 21}


@pytest.mark.parametrize("raw,msg", VECTORS, ids=[chr(v[0][0]) for v in VECTORS])
def test_spec_vectors(raw: bytes, msg: im.Message) -> None:
    assert len(raw) == SPEC_LENGTHS[chr(raw[0])]
    assert itch.decode(raw) == msg
    assert itch.encode(msg) == raw


@pytest.mark.parametrize("raw,msg", EDGE_VECTORS, ids=[chr(v[0][0]) for v in EDGE_VECTORS])
def test_edge_vectors(raw: bytes, msg: im.Message) -> None:
    assert itch.decode(raw) == msg
    assert itch.encode(msg) == raw


def test_every_type_has_a_vector() -> None:
    assert {chr(raw[0]) for raw, _ in VECTORS} == set(SPEC_LENGTHS)


def test_decode_at_offset_inside_a_buffer() -> None:
    raw, msg = VECTORS[3]
    buf = b"junk" + raw + b"tail"
    assert itch.decode(buf, 4, len(raw)) == msg


@pytest.mark.parametrize("raw,code", [
    (b"", "truncated"),
    (VECTORS[3][0][:-1], "truncated"),
    (VECTORS[3][0] + b"\0", "bad_length"),
    (b"Z" + b"\0" * 20, "unknown_type"),
    (b"\0", "unknown_type"),
    (VECTORS[1][0][:11], "truncated"),  # a directory cut after its header
    (VECTORS[11][0][:36], "truncated"),  # a cross trade one 4-byte field short
    (VECTORS[12][0] * 2, "bad_length"),  # two messages where one was announced
])
def test_bad_messages_raise_with_a_code(raw: bytes, code: str) -> None:
    with pytest.raises(ItchError) as err:
        itch.decode(raw)
    assert err.value.code == code


alpha = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)


@given(locate=st.integers(0, 0xFFFF), ts=st.integers(0, (1 << 48) - 1), ref=st.integers(0, (1 << 64) - 1),
       shares=st.integers(0, (1 << 32) - 1), price=st.integers(0, (1 << 32) - 1), stock=alpha,
       side=st.sampled_from("BS"), mpid=st.none() | st.text(alphabet="ABCDEFGHIJ", min_size=4, max_size=4))
def test_add_order_round_trip(locate: int, ts: int, ref: int, shares: int, price: int, stock: str, side: str,
                              mpid: str | None) -> None:
    m = im.AddOrder(locate, 7, ts, ref, side, shares, stock, price, mpid)
    raw = itch.encode(m)
    assert len(raw) == (40 if mpid else 36)
    assert itch.decode(raw) == m


def test_truncated_inside_a_larger_buffer() -> None:
    raw = VECTORS[4][0]
    with pytest.raises(ItchError) as err:
        itch.decode(raw, 0, len(raw) - 4)
    assert err.value.code == "truncated"
    with pytest.raises(ItchError) as err:
        itch.decode(raw[:20], 0, len(raw))  # a length that runs past the buffer
    assert err.value.code == "truncated"


u16, u32, u64 = st.integers(0, 0xFFFF), st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 64) - 1)
ts48 = st.integers(0, (1 << 48) - 1)
code = st.sampled_from("ABCDEFGHNPQRSTUVXYZ 1")  # one-byte codes, a space included
stock = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=8)
wide = lambda n: st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=0, max_size=n)  # noqa: E731

any_message = st.one_of(
    st.builds(im.SystemEvent, u16, u16, ts48, code),
    st.builds(im.StockDirectory, u16, u16, ts48, stock, code, code, u32, code, code, wide(2), code, code, code, code,
              code, u32, code),
    st.builds(im.TradingAction, u16, u16, ts48, stock, code, code, wide(4)),
    st.builds(im.AddOrder, u16, u16, ts48, u64, st.sampled_from("BS"), u32, stock, u32,
              st.none() | st.text(alphabet="ABCDEFGHIJ", min_size=1, max_size=4)),
    st.builds(im.OrderExecuted, u16, u16, ts48, u64, u32, u64),
    st.builds(im.OrderExecutedWithPrice, u16, u16, ts48, u64, u32, u64, st.sampled_from("YN"), u32),
    st.builds(im.OrderCancel, u16, u16, ts48, u64, u32),
    st.builds(im.OrderDelete, u16, u16, ts48, u64),
    st.builds(im.OrderReplace, u16, u16, ts48, u64, u64, u32, u32),
    st.builds(im.Trade, u16, u16, ts48, u64, st.sampled_from("BS"), u32, stock, u32, u64),
    st.builds(im.CrossTrade, u16, u16, ts48, u64, stock, u32, u64, st.sampled_from("OCHI")),
    st.builds(im.BrokenTrade, u16, u16, ts48, u64),
    st.builds(im.RegSho, u16, u16, ts48, stock, code),
    st.builds(im.MwcbDeclineLevel, u16, u16, ts48, u64, u64, u64),
    st.builds(im.MwcbStatus, u16, u16, ts48, code),
    st.builds(im.IpoQuotingPeriod, u16, u16, ts48, stock, u32, code, u32),
    st.builds(im.LuldAuctionCollar, u16, u16, ts48, stock, u32, u32, u32, u32),
    st.builds(im.OperationalHalt, u16, u16, ts48, stock, code, code),
)


@given(any_message)
def test_every_type_round_trips(m: im.Message) -> None:
    raw = itch.encode(m)
    kind = "F" if isinstance(m, im.AddOrder) and m.attribution is not None else None
    assert len(raw) == SPEC_LENGTHS[kind or chr(raw[0])]
    assert itch.decode(raw) == m
    assert itch.decode(b"xx" + raw + b"yy", 2, len(raw)) == m
