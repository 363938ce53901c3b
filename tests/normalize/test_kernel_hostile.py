"""The numba batch framer and book kernel on hostile buffers, with numba's bounds checks on (issue 10, item 7).

The compiled loops index arrays by values read from the wire (type bytes, locates, hash slots): compiled
without bounds checks, an index out of range reads or writes whatever lies there. ``boundscheck_core`` runs
the property with ``NUMBA_BOUNDSCHECK=1`` in a subprocess (numba reads the variable once, at import) and a
cache of its own, so such an access raises instead, and fails this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kernel_and_framer_never_read_out_of_bounds_and_match_the_pure_books() -> None:
    cache = Path(tempfile.gettempdir()) / f"tickfan-numba-boundscheck-{os.getuid()}"
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "tests.normalize.boundscheck_core", "150"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert "numba bounds checks are on" in run.stdout, run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr[-5000:]


def test_a_hostile_cross_or_match_number_is_counted_not_raised_by_either_engine() -> None:
    from ingest.messages import CrossTrade, Trade
    from normalize import Books
    from normalize.kernel import KernelBooks
    from tests.conftest import directory

    for books in (Books(), KernelBooks()):
        books.apply_batch([directory(1, "AAPL")])
        books.apply_batch([CrossTrade(1, 0, 5, 1 << 63, "AAPL", 1_000_000, 7, "O"),
                           CrossTrade(1, 0, 5, 1 << 40, "AAPL", 1_000_000, 7, "O"),
                           Trade(1, 0, 6, 9, "B", 100, "AAPL", 1_000_000, (1 << 64) - 1)])
        assert books.counters["bad_shares"] == 2, type(books)
        assert int(books.volume[1]) == 100 and int(books.last_size[1]) == 100
        prints, _, _ = books.trades_since(0)
        assert prints.match_number.tolist() == [-1]  # the 8-byte match number, as int64
