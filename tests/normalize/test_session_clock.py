"""The books' one clock: given the session's date, every stored time (the row's exchange_time, trade prints,
broken trades) is the ITCH stamp plus that date's Eastern midnight: Unix epoch ns, on both engines."""

from __future__ import annotations

import datetime as dt

import numpy as np

from ingest.itch import decode, encode
from ingest.sample import every_kind
from normalize import Books
from normalize.kernel import KernelBooks
from venue.simulator import ExchangeSimulator
from vocab.clock import eastern_midnight_ns
from vocab.framing import frame_all

FALL_BACK = dt.date(2026, 11, 1)  # a 25-hour day: midnight is EDT, 04:00 UTC
MIDNIGHT = 1_793_505_600 * 1_000_000_000  # 2026-11-01T04:00:00Z, worked out by hand


def stream() -> list[bytes]:
    ticks = iter(range(10**9, 10**18, 997))  # strictly rising stamps, so each message's time is its own
    sim = ExchangeSimulator(60, seed=5, session_date=FALL_BACK, clock=lambda: next(ticks))
    return [encode(m) for m in every_kind()] + sim.generate_encoded(8_000)


def test_every_stored_time_is_epoch_ns_of_the_session_date() -> None:
    assert eastern_midnight_ns(FALL_BACK) == MIDNIGHT
    raw = stream()
    itch, dated = Books(), Books(session_date=FALL_BACK)
    for books in (itch, dated):
        books.apply_batch([decode(m) for m in raw])
    assert dated.midnight_ns == MIDNIGHT and itch.midnight_ns == 0
    known = np.flatnonzero(itch.known)
    assert len(known) > 50
    assert np.array_equal(dated.exchange_time[known], itch.exchange_time[known] + MIDNIGHT)
    assert np.array_equal(dated.seq, itch.seq) and np.array_equal(dated.bid_price, itch.bid_price)
    for since in ("trades_since", "breaks_since"):
        (a, _, _), (b, _, _) = getattr(itch, since)(0), getattr(dated, since)(0)
        assert len(a.exchange_time) > 0, since
        assert np.array_equal(b.exchange_time, a.exchange_time + MIDNIGHT), since


def test_the_kernel_stores_the_same_epoch_times() -> None:
    raw = stream()
    ref = Books(session_date=FALL_BACK)
    ref.apply_batch([decode(m) for m in raw])
    fast = KernelBooks(session_date=FALL_BACK)
    fast.apply_bytes(frame_all(raw[:3_000]))
    fast.apply_bytes(frame_all(raw[3_000:]))
    assert np.array_equal(ref.exchange_time, fast.exchange_time)
    for since in ("trades_since", "breaks_since"):
        (a, _, _), (b, _, _) = getattr(ref, since)(0), getattr(fast, since)(0)
        assert np.array_equal(a.exchange_time, b.exchange_time) and np.array_equal(a.match_number, b.match_number)
