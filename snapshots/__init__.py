"""snapshots: the current books, for anyone who asks rather than streams.

Takes: a ``normalize.Books`` (same process in this release).
Gives: ``GET /v1/quotes?symbols=AAPL,MSFT`` -> JSON top of book with exact decimal-string prices
(``snapshots.http``); the quote record itself is built by ``snapshots.quote`` so every edge renders
a quote the same way.
Guarantees: read-only (never changes a book); an unknown symbol is a 404 naming it; prices are exact
strings, never floats.
"""
