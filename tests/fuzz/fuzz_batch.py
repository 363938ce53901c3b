"""Fuzz target: a buffer of length-prefixed ITCH into the numba framer, the numpy decoder and the book kernel.

Contract: nothing raises; the framer finds only messages of a known type at their type's length, inside the
buffer; the kernel's books equal the pure ``Books`` given the same messages. (The same property under
numba's bounds checks is ``tests/normalize/test_kernel_hostile.py``.)
Run: ``python -m tests.fuzz.run --seconds 15 batch``.
"""

from __future__ import annotations

import numpy as np

from ingest import itch
from ingest.batch import decode_buffer
from ingest.itch import LENGTHS
from ingest.sample import every_kind
from normalize import Books
from normalize.kernel import KernelBooks, warm_up
from venue.simulator import ExchangeSimulator
from vocab.framing import frame_all

FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size", "volume", "halted")
SEEDS: list[bytes] = [
    frame_all(itch.encode(m) for m in every_kind()),
    frame_all(ExchangeSimulator(5, seed=3).generate_encoded(200)),
    b"\xff\xff" + b"A" * 40,
    b"\x00\x00\x00\x24A",
]
# atheris instruments the bytecode of every function imported (numba's Python sources included, which numba
# cannot then compile): every kernel is compiled, or loaded from the cache, before that
warm_up()
decode_buffer(SEEDS[0])
# one pair of engines for the whole run (a fresh pair per input would spend the time allocating)
_KERNEL = KernelBooks(trade_capacity=64, order_capacity=16, level_capacity=16)
_PURE = Books(trade_capacity=64)


def one_input(data: bytes) -> None:
    buf, cols, counts = decode_buffer(data)
    assert 0 <= counts.consumed <= len(data) and cols.messages == counts.messages
    offsets = cols.offset.tolist()
    for off in offsets:
        assert off + LENGTHS[data[off]] <= counts.consumed
        assert (data[off - 2] << 8 | data[off - 1]) == LENGTHS[data[off]]
    _KERNEL.apply_bytes(data)
    _PURE.apply_batch([itch.decode(data, off, LENGTHS[data[off]]) for off in offsets])
    for name in FIELDS:
        # np.not_equal, not ``==``: atheris traces every comparison in this module's bytecode (numpy's
        # ``array_equal`` too) and kept each 65,536-element temporary alive, 500 KB an input
        if np.not_equal(getattr(_KERNEL, name), getattr(_PURE, name)).any():
            raise AssertionError(f"the kernel's {name} differs from the pure Books'")

if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
