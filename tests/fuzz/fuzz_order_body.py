"""Fuzz target: the order body decoder and validator (``order_api.model.parse_order``), as ``POST /v1/orders``
hands it the raw body. Contract: it returns a valid ``OrderRequest`` or raises ``ApiError`` (a 4xx with a code),
nothing else; what it returns is within every bound the ledger relies on.

``python -m tests.fuzz.run --seconds 15 order_body``
"""

from __future__ import annotations

from order_api.model import MAX_KEY, MAX_QTY, SYMBOL_CHARS, ApiError, parse_order

SEEDS: list[bytes] = [
    b'{"symbol":"AAPL","side":"buy","qty":10,"idempotency_key":"k1"}',
    b'{"symbol":"msft","side":"sell","qty":1,"type":"limit","limit_price":"410.0200","time_in_force":"ioc",'
    b'"idempotency_key":"k2"}',
    b'{"symbol":"AAPL","side":"buy","qty":1,"type":"limit","limit_price":"\xd9\xa1\xd9\xa2","idempotency_key":"k"}',
    b'{"symbol":"AAPL","side":"buy","qty":1,"idempotency_key":"a\\u0000b"}',
    b'{"symbol":"AAPL","side":"buy","qty":99999999999999999999999,"idempotency_key":"k"}',
    b'{"symbol":"AAPL","side":"buy","qty":1e400,"idempotency_key":"k"}',
    b'{"symbol":["AAPL"],"side":null,"qty":"1","idempotency_key":7}',
    b'{"symbol":"AAPL","side":"buy","qty":-1,"type":"limit","limit_price":"1.000000001","idempotency_key":"k"}',
    b'{"symbol":"AAPL","side":"buy","qty":1,"type":"limit","limit_price":"\xd9i","idempotency_key":"k"}',  # not UTF-8
    b'[1,2,3]',
    b'\xff\xfe{',
]


def one_input(data: bytes) -> None:
    try:
        req = parse_order(data)
    except ApiError as e:
        assert 400 <= e.status < 500 and e.code, (e.status, e.code)
        return
    assert req.symbol and len(req.symbol) <= 8 and set(req.symbol) <= SYMBOL_CHARS, req.symbol
    assert req.side in ("buy", "sell") and req.type in ("market", "limit") and req.tif in ("day", "ioc")
    assert 0 < req.qty <= MAX_QTY, req.qty
    assert 0 < len(req.idempotency_key) <= MAX_KEY and req.idempotency_key.isprintable()
    assert (req.limit_price is None) == (req.type == "market")
    assert req.limit_price is None or req.limit_price > 0
    req.fingerprint()


if __name__ == "__main__":
    from tests.fuzz.harness import fuzz

    fuzz(one_input)
