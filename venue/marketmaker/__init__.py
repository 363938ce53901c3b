"""venue.marketmaker: the FIX 4.4 market-maker simulator that execution workers trade against.

Takes FIX 4.4 connections (NewOrderSingle, OrderCancelRequest, OrderStatusRequest) and quotes (a static table
or the snapshot service's ``GET /v1/quotes``); gives execution reports that fill orders at the current top of
book. Guarantees: every execution is at the touch or better than the order's limit; ExecIDs are unique for
the life of the process and re-sent unchanged (PossResend=Y) on a status request; memory is bounded (orders,
queued reports); every fault is injected on purpose, never by accident.

Modules, inside out: ``engine`` (the pure :class:`MatchingEngine`, :class:`SimOrder`, :class:`Faults`),
``quotes`` (:class:`QuoteProvider` and its static and HTTP implementations), ``server`` (:class:`MarketMaker`,
the asyncio acceptor over ``order_api.fix.connection``, the same adapter the initiator uses). The command
(flags, signals) is the app layer's ``tickfan market-maker`` (``tickfan/market_maker.py``).
"""

from .engine import (
    DUPLICATE_TERMS,
    MAX_ORDERS,
    UNKNOWN_ORDER,
    Faults,
    MatchingEngine,
    Report,
    SimOrder,
)
from .quotes import (
    DEFAULT_QUOTES_URL,
    BookQuote,
    HttpQuoteProvider,
    PrimableQuoteProvider,
    QuoteProvider,
    StaticQuoteProvider,
    parse_static_quotes,
    quote_from_record,
)
from .server import (
    DEFAULT_ACCEPTED_COMP_IDS,
    DEFAULT_COMP_ID,
    DEFAULT_HOST,
    DEFAULT_PORT,
    MAX_QUEUED_REPORTS,
    MarketMaker,
    comp_id_accepted,
)

__all__ = [
    "DEFAULT_ACCEPTED_COMP_IDS", "DEFAULT_COMP_ID", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_QUOTES_URL",
    "DUPLICATE_TERMS", "MAX_ORDERS", "MAX_QUEUED_REPORTS", "UNKNOWN_ORDER", "BookQuote", "Faults",
    "HttpQuoteProvider", "MarketMaker", "MatchingEngine", "PrimableQuoteProvider", "QuoteProvider", "Report",
    "SimOrder", "StaticQuoteProvider", "comp_id_accepted", "parse_static_quotes", "quote_from_record",
]
