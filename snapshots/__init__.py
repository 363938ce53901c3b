"""snapshots: the current books, for anyone who asks rather than streams.

Takes: any ``normalize.source.BookSource`` (in-process ``Books``, a shared-memory ``BookView``, a Redis-fed
``RedisBooks``).
Gives: ``GET /v1/quotes?symbols=AAPL,MSFT`` -> JSON top of book with exact decimal-string prices, and
``GET /v1/depth`` (``snapshots.http``, Starlette); the records are the quote view's own JSON forms
(``normalize.quote``), so the snapshot, the Redis hash and the stream render a quote the same way.
Guarantees: read-only (never changes a book); an unknown symbol is a 404 naming it; prices are exact
strings, never floats.
"""
