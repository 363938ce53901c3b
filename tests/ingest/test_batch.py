"""The batch decoder gives, column by column, what ``itch.decode`` gives message by message."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from ingest.batch import PAD, decode_buffer, frame
from ingest.itch import decode, encode
from ingest.messages import AddOrder, CrossTrade, Message, OrderReplace, SystemEvent, TradingAction
from tests.conftest import directory
from venue.simulator import ExchangeSimulator


def capture(msgs: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in msgs)


def test_columns_equal_itch_decode_on_the_simulator_stream() -> None:
    raw = ExchangeSimulator(50, seed=7).generate_encoded(5_000)
    buf, cols, counts = decode_buffer(capture(raw))
    assert counts.messages == len(raw) == cols.messages and counts.unknown_types == counts.bad_lengths == 0
    assert counts.consumed == len(capture(raw)) and buf.shape[0] == counts.consumed + PAD
    seen = set()
    for i, m in enumerate(decode(r) for r in raw):
        m = cast(Any, m)  # the column checked depends on the message kind, read from the columns
        t = cols.kind[i]
        seen.add(chr(t))
        assert (int(cols.locate[i]), int(cols.timestamp[i])) == (m.locate, m.timestamp)
        got = {"ref": int(cols.ref[i]), "new_ref": int(cols.new_ref[i]), "shares": int(cols.shares[i]),
               "price": int(cols.price[i]), "match": int(cols.match[i]), "flag": chr(cols.flag[i])}
        if t in b"AF":
            want = {"ref": m.order_ref, "flag": m.side, "shares": m.shares, "price": m.price}
        elif t in b"E":
            want = {"ref": m.order_ref, "shares": m.executed_shares, "match": m.match_number}
        elif t in b"C":
            want = {"ref": m.order_ref, "shares": m.executed_shares, "match": m.match_number,
                    "flag": m.printable, "price": m.execution_price}
        elif t in b"X":
            want = {"ref": m.order_ref, "shares": m.cancelled_shares}
        elif t in b"D":
            want = {"ref": m.order_ref}
        elif t in b"U":
            want = {"ref": m.original_order_ref, "new_ref": m.new_order_ref, "shares": m.shares, "price": m.price}
        elif t in b"P":
            want = {"ref": m.order_ref, "flag": m.side, "shares": m.shares, "price": m.price,
                    "match": m.match_number}
        elif t in b"Q":
            want = {"shares": m.shares, "price": m.cross_price, "match": m.match_number}
        elif t in b"B":
            want = {"match": m.match_number}
        elif t in b"H":
            want = {"flag": m.trading_state}
        elif t in b"S":
            want = {"flag": m.event_code}
        else:
            assert t == ord("R")
            want = {"shares": m.round_lot_size,
                    "new_ref": int.from_bytes(m.stock.encode().ljust(8, b" "), "big")}
        assert {k: got[k] for k in want} == want, (m, got)
    assert set("RAEXDU") <= seen


def test_wide_fields_and_rare_types() -> None:
    msgs: list[Message] = [
        AddOrder(65_535, 1, 2**48 - 1, 2**64 - 1, "S", 2**32 - 1, "ZZZZ", 2**32 - 1, "MPID"),
        OrderReplace(3, 0, 5, 2**63, 2**63 + 1, 7, 8),
        CrossTrade(4, 0, 6, 2**40, "ABC", 123_4500, 2**64 - 2, "O"),
        TradingAction(5, 0, 7, "ABC", "H", " ", "IPO1"),
        SystemEvent(0, 0, 8, "O"),
        directory(9, "ABCDEFGH", timestamp=9),
    ]
    _, cols, counts = decode_buffer(capture([encode(m) for m in msgs]))
    assert counts.messages == len(msgs)
    # int64 columns hold unsigned 64-bit fields as their two's-complement bit pattern
    u = cols.ref.view(np.uint64)
    assert (int(cols.locate[0]), int(cols.timestamp[0]), int(u[0]), int(cols.shares[0]), int(cols.price[0])) == \
        (65_535, 2**48 - 1, 2**64 - 1, 2**32 - 1, 2**32 - 1)
    assert (int(u[1]), int(cols.new_ref.view(np.uint64)[1]), int(cols.shares[1]), int(cols.price[1])) == \
        (2**63, 2**63 + 1, 7, 8)
    assert (int(cols.shares[2]), int(cols.price[2]), int(cols.match.view(np.uint64)[2])) == \
        (2**40, 123_4500, 2**64 - 2)
    assert bytes(cols.flag[3:5]) == b"HO"
    assert int(cols.new_ref[5]) == int.from_bytes(b"ABCDEFGH", "big") and int(cols.shares[5]) == 100


def test_bad_messages_are_counted_and_skipped_and_a_partial_tail_is_left() -> None:
    good = encode(SystemEvent(0, 0, 1, "O"))
    data = (capture([good, b"Z" + bytes(10), good[:-1] + b"", good + b"x"]) + b"\x00\x00" + capture([good])
            + b"\x00\x0c" + good[:5])
    buf = np.zeros(len(data) + PAD, np.uint8)
    buf[: len(data)] = np.frombuffer(data, np.uint8)
    offsets, counts = frame(buf, len(data))
    assert (counts.messages, counts.unknown_types, counts.bad_lengths) == (2, 1, 3)
    assert counts.consumed == len(data) - 2 - 5  # the unfinished message waits for the next buffer
    assert buf[offsets].tobytes() == b"SS"
