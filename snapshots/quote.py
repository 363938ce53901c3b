"""One symbol's top of book, or its depth, as a JSON-ready record (pure): the quote view's own forms.

The conversions live with the quote view (``normalize.quote``), so the snapshot, the Redis hash and the
stream render a quote the same way; these are the snapshot endpoint's names for them.
"""

from __future__ import annotations

from typing import Any

from normalize.quote import read_depth, read_quote
from normalize.source import BookSource


def quote_record(books: BookSource, locate: int) -> dict[str, Any]:
    """The JSON-ready quote of one known locate; prices as exact strings, sizes and times as integers."""
    return read_quote(books, locate).record()


def depth_record(books: BookSource, locate: int, levels: int) -> dict[str, Any]:
    """The JSON-ready depth of one known locate: best ``levels`` price levels a side, best first."""
    return read_depth(books, locate, levels).record()
