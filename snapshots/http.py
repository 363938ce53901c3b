"""HTTP snapshot endpoint (ASGI, Starlette) over the in-process books.

``GET /v1/quotes?symbols=AAPL,MSFT`` answers ``{"quotes": [...]}``; ``GET /v1/depth?symbol=AAPL&levels=10``
answers one symbol's price levels, best first; ``GET /v1/bars?symbol=AAPL&interval=1m&limit=390`` one symbol's
newest bars, oldest first (``snapshots.bars``). Errors are JSON
``{"error": {"code": ..., "message": ..., "symbols": [...]}}`` with a 4xx status; anything unforeseen is logged
and answered 500 ``internal``, never with a traceback. A symbol listed twice is answered once, and a request
lists at most ``MAX_SYMBOLS_PER_REQUEST`` symbols (duplicates counted: the cap bounds the work of parsing too).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from normalize.bar_feed import BarSource
from normalize.quote import read_depth, read_quote
from normalize.source import BookSource
from vocab.digits import parse_ascii_int

from .bars import BAR_INTERVALS, DEFAULT_BARS, MAX_BARS, bars_record

log = logging.getLogger("tickfan.snapshots")
MAX_SYMBOLS_PER_REQUEST = 1000
MAX_DEPTH_LEVELS = 50


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(status: int, code: str, message: str, symbols: list[str] | None = None) -> Response:
    return _json({"error": {"code": code, "message": message, "symbols": symbols or []}}, status)


def create_app(books: BookSource, extra_routes: list[Route] | None = None, bars: BarSource | None = None
               ) -> Starlette:
    """``bars``: what ``/v1/bars`` serves (None: it answers 503 ``bars_unavailable``)."""
    async def quotes(request: Request) -> Response:
        raw = request.query_params.get("symbols")
        if raw is None or not raw.strip():
            return error_response(400, "missing_symbols", "give symbols=AAPL,MSFT")
        listed = [s.strip().upper() for s in raw.split(",", MAX_SYMBOLS_PER_REQUEST) if s.strip()]
        if len(listed) > MAX_SYMBOLS_PER_REQUEST:
            return error_response(
                400, "too_many_symbols", f"at most {MAX_SYMBOLS_PER_REQUEST} symbols per request"
            )
        wanted = list(dict.fromkeys(listed))  # each symbol once, in the order first asked
        locate_of = books.locate_of
        unknown = [s for s in wanted if s not in locate_of]
        if unknown:
            return error_response(404, "unknown_symbol", f"unknown symbol(s): {', '.join(unknown)}", unknown)
        return _json({"quotes": [read_quote(books, locate_of[s]).record() for s in wanted]})

    async def depth(request: Request) -> Response:
        symbol = (request.query_params.get("symbol") or "").strip().upper()
        if not symbol:
            return error_response(400, "missing_symbol", "give symbol=AAPL")
        try:
            levels = parse_ascii_int(request.query_params.get("levels", "10"), 3)
        except ValueError:
            levels = 0  # not ASCII digits ("²" passed isdigit() and then raised in int(): a 500)
        if not 1 <= levels <= MAX_DEPTH_LEVELS:
            return error_response(400, "bad_levels", f"levels must be 1..{MAX_DEPTH_LEVELS}")
        locate = books.locate_of.get(symbol)
        if locate is None:
            return error_response(404, "unknown_symbol", f"unknown symbol: {symbol}", [symbol])
        return _json(read_depth(books, locate, levels).record())

    async def bar_history(request: Request) -> Response:
        q = request.query_params
        symbol = (q.get("symbol") or "").strip().upper()
        if not symbol:
            return error_response(400, "missing_symbol", "give symbol=AAPL")
        interval = BAR_INTERVALS.get(q.get("interval", "1m"))
        if interval is None:
            return error_response(400, "bad_interval", f"interval must be one of {', '.join(BAR_INTERVALS)}")
        try:
            limit = parse_ascii_int(q.get("limit", str(DEFAULT_BARS)), 6)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_BARS:
            return error_response(400, "bad_limit", f"limit must be 1..{MAX_BARS}")
        locate = books.locate_of.get(symbol)
        if locate is None:
            return error_response(404, "unknown_symbol", f"unknown symbol: {symbol}", [symbol])
        if bars is None:
            return error_response(503, "bars_unavailable", "this node does not build bars")
        return _json(bars_record(symbol, q.get("interval", "1m"), await bars.fetch_history(locate, interval, limit)))

    async def health(request: Request) -> Response:
        return _json({"status": "ok", "symbols": len(books.locate_of)})

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "not_found", f"no route {request.url.path}")

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal error; it has been logged")

    return Starlette(
        routes=[Route("/v1/quotes", quotes), Route("/v1/depth", depth), Route("/v1/bars", bar_history),
                Route("/healthz", health),
                *(extra_routes or [])],
        exception_handlers={404: not_found, Exception: internal},
    )
