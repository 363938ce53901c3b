"""The book kernel and the batch framer on hostile buffers, run with numba's bounds checks on.

Not a test module: ``test_kernel_hostile.py`` runs it in a subprocess with ``NUMBA_BOUNDSCHECK=1`` (numba
reads that once, at import) and its own ``NUMBA_CACHE_DIR`` (so no kernel compiled without the checks is
loaded from the cache). An out-of-bounds read or write in a compiled function then raises ``IndexError``
instead of reading whatever lies there, and the run fails. It first proves that the checks are on.
Oracle: never raises; the kernel's books equal the pure ``Books`` given the same well-framed messages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import cast

import numba
import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis.errors import Unsatisfiable

from ingest import itch
from ingest.batch import decode_buffer
from normalize import Books
from normalize.kernel import KernelBooks
from tests.ingest.hostile import itch_stream
from tests.ingest.reference import FIELDS


def _read(a: npt.NDArray[np.int64], i: int) -> int:
    return int(a[i])


def bounds_checked() -> bool:
    """A compiled read past the end raises: the checks this run relies on are really on."""
    read = cast(Callable[[npt.NDArray[np.int64], int], int], numba.njit(_read))
    try:
        read(np.zeros(2, np.int64), 5)
    except IndexError:
        return True
    return False


def check(data: bytes) -> None:
    # tiny tables, so the growth paths run too
    kernel = KernelBooks(trade_capacity=8, order_capacity=16, level_capacity=16)
    consumed = kernel.apply_bytes(data)
    _, cols, counts = decode_buffer(data)
    assert consumed == counts.consumed <= len(data)
    reference = Books(trade_capacity=8)
    reference.apply_batch([itch.decode(data, off, itch.LENGTHS[data[off]]) for off in cols.offset.tolist()])
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(kernel, name), getattr(reference, name), err_msg=name)


def main() -> int:
    if os.environ.get("NUMBA_BOUNDSCHECK") != "1" or not bounds_checked():
        print("numba bounds checks are OFF: this run would prove nothing", flush=True)
        return 2
    print("numba bounds checks are on", flush=True)
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    run = settings(max_examples=examples, deadline=None, database=None)(given(itch_stream())(check))
    try:
        run()
    except Unsatisfiable:
        return 3
    print("kernel and framer: clean", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
