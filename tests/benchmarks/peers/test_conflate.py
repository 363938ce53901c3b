"""The peers' conflating publisher (benchmarks/peers/conflate.py): what it takes, and when it is due.

The benchmarks are scripts, not a package: the module is loaded from its file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "peers" / "conflate.py"


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("bench_peers_conflate", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Conflator = _module().Conflator


def watched(n: int, *locates: int) -> np.ndarray:
    mask = np.zeros(n, np.bool_)
    mask[list(locates)] = True
    return mask


def test_each_moved_watched_symbol_is_taken_once_however_often_it_moved() -> None:
    seq = np.zeros(8, np.int64)
    c = Conflator(watched(8, 1, 2, 3, 5), period_s=0.05)
    seq[1] += 3  # three changes of one symbol within a period: one update, its newest state
    seq[2] += 1
    seq[4] += 1  # moved, but nobody watches it
    assert c.take(seq, 8, now=0.0).tolist() == [1, 2]
    assert c.take(seq, 8, now=0.05).tolist() == []  # nothing moved since
    seq[1] += 1
    seq[5] += 1
    assert c.take(seq, 8, now=0.10).tolist() == [1, 5]


def test_only_locates_below_high_are_looked_at() -> None:
    seq = np.zeros(8, np.int64)
    c = Conflator(watched(8, 1, 6))
    seq[[1, 6]] = 1
    assert c.take(seq, 4, now=0.0).tolist() == [1]
    assert c.take(seq, 8, now=0.0).tolist() == [6]  # not lost: taken once the books reach it


def test_without_a_period_every_take_is_due() -> None:
    c = Conflator(watched(4, 1))
    assert not c.conflating
    assert c.due(0.0)
    c.take(np.zeros(4, np.int64), 4, now=0.0)
    assert c.due(0.0)


def test_with_a_period_takes_keep_a_fixed_schedule() -> None:
    seq = np.zeros(4, np.int64)
    c = Conflator(watched(4, 1), period_s=0.25)  # binary fractions: the schedule's sums are exact
    assert c.due(0.0)  # the first take at once
    c.take(seq, 4, now=1.0)
    assert not c.due(1.125)
    assert c.due(1.25)
    c.take(seq, 4, now=1.375)  # a late take does not shift the schedule
    assert not c.due(1.4375) and c.due(1.5)
    c.take(seq, 4, now=2.0)  # a whole period missed: the schedule starts again from now
    assert not c.due(2.125) and c.due(2.25)


def test_a_negative_period_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Conflator(watched(4, 1), period_s=-1.0)
