"""The book row is declared once (``normalize.row``) and every holder of books is built from it."""

from __future__ import annotations

import numpy as np
import pytest

from normalize import MAX_LOCATES, Books
from normalize.kernel import KernelBooks
from normalize.replicas.redis import RedisBooks
from normalize.replicas.shm import BookView, SharedBookState, _layout
from normalize.row import FIELD_NAMES, ROW_FIELDS, BookRow, bind_row, new_row
from normalize.source import BookSource


def test_the_row_is_its_annotations_ints_then_flags() -> None:
    assert FIELD_NAMES == tuple(BookRow.__annotations__)
    flags = [f.name for f in ROW_FIELDS if f.dtype == np.bool_]
    assert flags == ["halted", "stale", "known", "operational_halt"]
    assert all(f.dtype == np.int64 for f in ROW_FIELDS if f.name not in flags)
    assert {"bid_price", "seq", "depth_seq", "exchange_time", "round_lot"} <= set(FIELD_NAMES)


def _holders() -> list[BookSource]:
    state = SharedBookState.create()
    view = BookView(state)
    state.close()  # the view's arrays are its own; the mapping goes when the last view of it does
    return [Books(), KernelBooks(order_capacity=16, level_capacity=16), view, RedisBooks("redis://127.0.0.1:6379/11")]


@pytest.mark.parametrize("holder", _holders(), ids=lambda h: type(h).__name__)
def test_every_holder_has_the_whole_row(holder: BookSource) -> None:
    arrays = [getattr(holder, f.name) for f in ROW_FIELDS]
    for f, arr in zip(ROW_FIELDS, arrays, strict=True):
        assert arr.dtype == f.dtype and arr.shape == (MAX_LOCATES,), f.name
    assert len({id(a) for a in arrays}) == len(arrays)  # no two fields share an array


def test_books_write_into_arrays_they_are_given() -> None:
    arrays = new_row(MAX_LOCATES)
    books = Books(arrays=arrays)
    for name in FIELD_NAMES:
        assert getattr(books, name) is arrays[name]


def test_the_shared_block_lays_out_the_row() -> None:
    layout = {f.name: f for f in _layout(100)}
    for f in ROW_FIELDS:
        assert layout[f.name].dtype == f.dtype and layout[f.name].shape == (100,)


def test_binding_checks_the_dtype() -> None:
    arrays = new_row(4)
    arrays["seq"] = np.zeros(4, np.int32)
    with pytest.raises(TypeError, match="seq"):
        bind_row(Books(), arrays)
