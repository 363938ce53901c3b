"""The trading domain, pure: order requests, their validation, the order lifecycle and the hold rules.

Money and prices share ITCH's fixed point: integers of 1/10,000 of a dollar. Quantities are integers of a
millionth of a share (``vocab.quantities.QTY_SCALE``): a fill of ``qty`` at ``price`` costs
``qty * price / QTY_SCALE`` money units, rounded per order by the ledger's rule (order_api/ledger.py: buyers
round up, sellers down) with the residual kept by the house, so no cent is created or lost. JSON shows money
and quantities as exact decimal strings.

A ``notional`` order (market orders only) trades that many dollars' worth. A buy spends at most the notional:
it holds the notional, and is sent for the quantity the notional buys at the ask seen at placement (rounded down
to a millionth), limited to the price at which that quantity still costs at most the notional; a fill at a better
price spends less, and what the order does not spend is released when it closes. A sell sells the quantity the
notional is worth at the bid seen at placement (rounded down to a millionth: at that bid it raises at most the
notional), holding those shares like any sell, never more than the position (``insufficient_shares``
otherwise); it is sent as an ordinary market sell of that quantity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import msgspec

from normalize.quote import QuoteView
from vocab.partition import crc32_partition
from vocab.prices import PRICE_SCALE, format_price, parse_price
from vocab.quantities import QTY_SCALE, format_qty, parse_qty

MAX_QTY = 1_000_000 * QTY_SCALE  # a million shares, in millionths
MAX_NOTIONAL = 1_000_000 * PRICE_SCALE  # a million dollars
MAX_KEY = 128
STOP_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})
SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ.-")


class Status(StrEnum):
    # a stop, stop-limit or trailing stop resting un-routed until the live books cross its stop (order_api/stops.py)
    PENDING_TRIGGER = "pending_trigger"
    ACCEPTED = "accepted"
    ROUTED = "routed"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"  # a day order the session's end closed (its hold released); never for gtc
    # the market maker replaced it (PATCH /v1/orders/{id}): its fills stay, its hold moved to the replacement, a
    # new order (``replaced_by``); only from routed or partially filled, and only on the market maker's word
    REPLACED = "replaced"


OPEN = frozenset({Status.PENDING_TRIGGER, Status.ACCEPTED, Status.ROUTED, Status.PARTIALLY_FILLED})
# what may be sent to the market maker: open, and not a stop still waiting for its trigger
SENDABLE = OPEN - {Status.PENDING_TRIGGER}
TERMINAL = frozenset({Status.FILLED, Status.CANCELLED, Status.REJECTED, Status.EXPIRED, Status.REPLACED})

# The lifecycle as an explicit machine (h11-style): anything not listed is a bug, not a drift.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    # triggered: one transaction makes it an ordinary accepted order and queues its routing; or cancelled while
    # resting (its hold released at once, as for an accepted order); or, a day stop, expired by the day's end
    # (the feed's end of system hours: order_api.stop_watcher); never routed or filled before it triggers
    Status.PENDING_TRIGGER: frozenset({Status.ACCEPTED, Status.CANCELLED, Status.EXPIRED}),
    Status.ACCEPTED: frozenset({Status.ROUTED, Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED,
                               Status.REJECTED, Status.EXPIRED}),
    Status.ROUTED: frozenset({Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED, Status.REJECTED,
                             Status.EXPIRED, Status.REPLACED}),
    Status.PARTIALLY_FILLED: frozenset({Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED, Status.EXPIRED,
                                       Status.REPLACED}),
    Status.FILLED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.EXPIRED: frozenset(),
    Status.REPLACED: frozenset(),
}

# Time in force (Alpaca's names): day (expires at the session's end), gtc (rests across sessions until filled or
# cancelled), ioc (what fills at once, the rest cancelled), fok (all at once or nothing), opg and cls (only in
# the venue's opening and closing crosses).
TimeInForce = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]
TIFS: tuple[str, ...] = ("day", "gtc", "ioc", "fok", "opg", "cls")
# How an extended-hours order's tif reaches the ledger: place_orders passes tif through as text, and migration
# 011's trigger turns this suffix into the orders.extended_hours column (so place_orders keeps its signature).
EXTENDED_SUFFIX = "+ext"


class IllegalTransition(Exception):
    def __init__(self, old: Status, new: Status) -> None:
        super().__init__(f"illegal order transition {old} -> {new}")
        self.old, self.new = old, new


def transition(old: Status, new: Status) -> Status:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(old, new)
    return new


class ApiError(Exception):
    """A refused request: HTTP ``status`` and a machine-readable ``code``; nothing was written."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class OrderBody(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/orders`` as the client sends it; prices are decimal strings."""

    symbol: str
    side: Literal["buy", "sell"]
    idempotency_key: str
    # shares: a whole number, or a decimal string with at most 6 decimals; exclusive with notional
    qty: int | str | None = None
    notional: str | None = None  # dollars, a decimal string (market orders: a buy spends it, a sell raises it)
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    limit_price: str | None = None
    time_in_force: TimeInForce = "day"
    extended_hours: bool = False
    stop_price: str | None = None  # stop and stop_limit: the trigger price, dollars as a decimal string
    trail_percent: str | None = None  # trailing_stop: the trail as a percentage of the mark ("1.5")
    trail_price: str | None = None  # trailing_stop: the trail in dollars (exclusive with trail_percent)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated order: symbol upper-cased, limit price and notional as fixed-point money, ``qty`` in
    millionths of a share (0 for a notional order: its quantity is priced at placement, ``notional_terms``)."""

    symbol: str
    side: str
    qty: int
    type: str
    limit_price: int | None
    tif: str
    idempotency_key: str
    notional: int | None = None
    extended_hours: bool = False
    stop_price: int | None = None
    trail_percent: int | None = None  # in 1/10,000 of a percent (``stops.PCT_SCALE``): "1.5" -> 15000
    trail_price: int | None = None

    @property
    def is_stop(self) -> bool:
        """Rests until the books cross its stop (stop, stop_limit, trailing_stop)."""
        return self.type in STOP_TYPES

    def fingerprint(self) -> str:
        """What makes two requests "the same body" for idempotency (the key itself excluded). A whole quantity
        reads as it did before fractions ("100"), so a retry across the upgrade is still the same body."""
        amount = f"{format_qty(self.qty)}" if self.notional is None else f"${format_price(self.notional)}"
        text = f"{self.symbol}|{self.side}|{amount}|{self.type}|{self.limit_price}|{self.tif}"
        if self.extended_hours:  # (only then: the fingerprints of orders from before the flag stay the same)
            text += "|ext"
        if self.is_stop:  # appended only for stops, so every other order's fingerprint is what it was
            text += f"|{self.stop_price}|{self.trail_percent}|{self.trail_price}"
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def tif_column(self) -> str:
        """The tif as place_orders takes it (with the extended-hours flag: see ``EXTENDED_SUFFIX``)."""
        return self.tif + EXTENDED_SUFFIX if self.extended_hours else self.tif


def parse_order(raw: bytes) -> OrderRequest:
    """Decode and validate a JSON order body; raises :class:`ApiError` (422/400) with a precise code."""
    try:
        body = msgspec.json.decode(raw, type=OrderBody)
    except msgspec.ValidationError as e:
        raise ApiError(422, "invalid_order", str(e)) from e
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        # msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8 (found by fuzzing)
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {e}") from e
    return validate(body)


def validate(body: OrderBody) -> OrderRequest:
    symbol = body.symbol.strip().upper()
    if not symbol or len(symbol) > 8 or not set(symbol) <= SYMBOL_CHARS:
        raise ApiError(422, "invalid_symbol", f"not a ticker symbol: {body.symbol!r}")
    qty, notional = _amount(body)
    key = body.idempotency_key
    if not key or len(key) > MAX_KEY:
        raise ApiError(422, "invalid_idempotency_key", f"idempotency_key must be 1-{MAX_KEY} characters")
    if not key.isprintable():
        # NUL cannot be stored in PostgreSQL text (it raised inside the ledger: a 500); no control characters
        raise ApiError(422, "invalid_idempotency_key", "idempotency_key must be printable (no control characters)")
    limit: int | None = None
    if body.type in ("limit", "stop_limit"):
        if body.limit_price is None:
            raise ApiError(422, "missing_limit_price", "a limit order needs limit_price")
        limit = limit_price(body.limit_price)
    elif body.limit_price is not None:
        raise ApiError(422, "unexpected_limit_price", f"a {body.type} order takes no limit_price")
    if notional is not None and body.type != "market":
        raise ApiError(422, "notional_market_only", "notional is for market orders only; send qty instead")
    if body.extended_hours and (body.type != "limit" or body.time_in_force != "day"):
        raise ApiError(422, "invalid_extended_hours", "extended_hours takes a limit order with time_in_force day")
    if body.type in STOP_TYPES and body.time_in_force not in ("day", "gtc"):
        raise ApiError(422, "invalid_time_in_force", f"a {body.type} order takes time_in_force day or gtc")
    stop, percent, trail = _stop_terms(body)
    return OrderRequest(symbol, body.side, qty, body.type, limit, body.time_in_force, key, notional=notional,
                        extended_hours=body.extended_hours, stop_price=stop, trail_percent=percent, trail_price=trail)


def _stop_terms(body: OrderBody) -> tuple[int | None, int | None, int | None]:
    """(stop_price, trail_percent, trail_price) as fixed point: what the order's type needs, and nothing else. A
    stop may take any positive price (collars apply to marketable prices only)."""
    stop = _positive(body.stop_price, "stop_price", "invalid_stop_price")
    percent = _positive(body.trail_percent, "trail_percent", "invalid_trail_percent")
    trail = _positive(body.trail_price, "trail_price", "invalid_trail_price")
    if body.type in ("stop", "stop_limit"):
        if stop is None:
            raise ApiError(422, "missing_stop_price", f"a {body.type} order needs stop_price")
    elif stop is not None:
        raise ApiError(422, "unexpected_stop_price", f"a {body.type} order takes no stop_price")
    if body.type == "trailing_stop":
        if (percent is None) == (trail is None):
            raise ApiError(422, "missing_trail", "a trailing_stop order needs exactly one of trail_percent and "
                                                 "trail_price")
        if percent is not None and percent >= 100 * PRICE_SCALE:
            raise ApiError(422, "invalid_trail_percent", "trail_percent must be below 100")
    elif percent is not None or trail is not None:
        raise ApiError(422, "unexpected_trail", f"a {body.type} order takes no trail_percent or trail_price")
    return stop, percent, trail


def _positive(text: str | None, field: str, code: str) -> int | None:
    """A positive decimal (at most 4 decimals: ``vocab.prices``) as fixed point, or None when absent."""
    if text is None:
        return None
    try:
        value = parse_price(text)
    except ValueError as e:
        raise ApiError(422, code, f"{field}: {e}") from e
    if value <= 0:
        raise ApiError(422, code, f"{field} must be positive")
    return value


def _amount(body: OrderBody) -> tuple[int, int | None]:
    """(qty in millionths, notional in money units or None): exactly one of ``qty`` and ``notional``."""
    if body.qty is not None and body.notional is not None:
        raise ApiError(422, "qty_and_notional", "send either qty or notional, not both")
    if body.notional is not None:
        try:
            notional = parse_price(body.notional)
        except ValueError as e:
            raise ApiError(422, "invalid_notional", f"notional must be dollars as a decimal string: {e}") from e
        if not 0 < notional <= MAX_NOTIONAL:
            raise ApiError(422, "invalid_notional", f"notional must be positive and at most "
                                                    f"{format_price(MAX_NOTIONAL)}")
        return 0, notional
    if body.qty is None:
        raise ApiError(422, "missing_qty", "an order needs qty (shares) or notional (dollars)")
    if isinstance(body.qty, int):
        if body.qty <= 0 or body.qty > MAX_QTY // QTY_SCALE:
            raise ApiError(422, "invalid_quantity", f"qty must be positive and at most {format_qty(MAX_QTY)}")
        return body.qty * QTY_SCALE, None
    try:
        qty = parse_qty(body.qty)
    except ValueError as e:
        raise ApiError(422, "invalid_quantity", f"qty must be a whole number or a decimal string with at most 6 "
                                                f"decimals: {e}") from e
    if not 0 < qty <= MAX_QTY:
        raise ApiError(422, "invalid_quantity", f"qty must be positive and at most {format_qty(MAX_QTY)}")
    return qty, None


def notional_terms(notional: int, quote: Quote, rules: Rules) -> tuple[int, int]:
    """(qty, limit) of a notional buy: the quantity ``notional`` buys at the ask, rounded down to a millionth, and
    the highest price at which that quantity still costs at most ``notional`` (never above the collar)."""
    ask = quote.ask or quote.reference
    qty = min(notional * QTY_SCALE // ask, MAX_QTY) if ask > 0 else 0
    if qty <= 0:
        raise ApiError(422, "notional_too_small", f"{format_price(notional)} buys less than a millionth of a share")
    collar = ask + ceil_div(ask * rules.collar_bps, 10_000)
    return qty, min(notional * QTY_SCALE // qty, collar)


def notional_sell_qty(notional: int, quote: Quote) -> int:
    """The quantity a notional sell sells: what ``notional`` is worth at the bid, rounded down to a millionth (at
    that bid it raises at most the notional). ``pre_trade`` has refused a market sell without a bid."""
    qty = min(notional * QTY_SCALE // quote.bid, MAX_QTY) if quote.bid > 0 else 0
    if qty <= 0:
        raise ApiError(422, "notional_too_small", f"{format_price(notional)} is less than a millionth of a share")
    return qty


@dataclass(frozen=True, slots=True)
class Quote:
    """What pre-trade checks need of the current snapshot; prices fixed-point, 0 when the side is empty."""

    bid: int
    ask: int
    last: int
    halted: bool
    stale: bool
    # seconds since this quote was last known current (read from its source, vouched for by its publisher);
    # 0 for a source that holds the books itself
    age: float = 0.0
    # the feed's market hours as the quote's source saw them with it (``normalize.status``): True between the
    # system events Q (start of market hours) and M (end); False outside them or before the feed said anything;
    # None when the source is not a feed (a fixed price table): see ``pre_trade``
    market_open: bool | None = None
    trading_state: str = ""  # the feed's trading state and reason ("P", "LUDP"), for the refusal's message
    trading_reason: str = ""
    # where the feed's day is (``MarketStatusView.phase``): "pre_market", "open", "after_hours", "closed"; None
    # when the source is not a feed. Extended-hours orders are taken in the first and third.
    market_phase: str | None = None
    # the feed's latest system event (``MarketStatusView.system_event``: "E" once it has ended system hours, the
    # day's rollover, which expires the resting day stops: ``order_api.stops.session_ended``); "" when unknown
    market_event: str = ""

    @classmethod
    def of(cls, view: QuoteView, market_open: bool | None = None, market_phase: str | None = None,
           market_event: str = "") -> Quote:
        """What the checks need of the books' quote view (``normalize.quote``) and market status."""
        return cls(bid=view.bid_price, ask=view.ask_price, last=view.last_price, halted=view.halted,
                   stale=view.stale, market_open=market_open, trading_state=view.trading_state,
                   trading_reason=view.trading_reason, market_phase=market_phase, market_event=market_event)

    def is_stale(self, max_age: float) -> bool:
        """Not to be shown as current: the feed says so, or nothing has vouched for it for over ``max_age``
        seconds (its publisher gone, or Redis down; 0: no age limit)."""
        return self.stale or (max_age > 0 and self.age > max_age)

    @property
    def reference(self) -> int:
        """The price collars are measured from: the mid when both sides exist, else the last trade."""
        if self.bid and self.ask:
            return (self.bid + self.ask) // 2
        return self.last or self.bid or self.ask


@dataclass(frozen=True, slots=True)
class Rules:
    """Pre-trade configuration. ``collar_bps``: how far from the reference a limit may be, and how far above
    the ask a market buy is protected (market buys are sent as limits at that price, so a fill can never cost
    more than was held)."""

    collar_bps: int = 1_000  # 10 %
    # The operator's switch (``--market-closed``): False refuses every order whatever the feed says. It can
    # only close: market hours themselves come from the feed (``Quote.market_open``), never from a clock here.
    market_open: bool = True
    # A market order needs a quote at most this many seconds old (quote_stale otherwise); 0: no check.
    max_quote_age: float = 5.0


def reserve_price(req: OrderRequest, quote: Quote, rules: Rules) -> int:
    """The per-share price held for a buy (and sent as its limit): the limit itself (limit, stop_limit), else the
    collar above the ask (market), above the stop (stop), or above the trailing stop at placement (trailing_stop:
    a buy's trailing stop only falls, so this hold covers it whenever it triggers)."""
    if req.limit_price is not None:
        return req.limit_price
    if req.stop_price is not None:
        ref = req.stop_price
    elif req.type == "trailing_stop":
        ref = trail_stop("buy", initial_mark("buy", quote), req.trail_price, req.trail_percent)
    else:
        ref = quote.ask or quote.reference
    return ref + ceil_div(ref * rules.collar_bps, 10_000)


def initial_mark(side: str, quote: Quote) -> int:
    """Where a trailing stop's mark starts: the bid for a sell (its high-water mark), the ask for a buy (its
    low-water mark); the last trade or reference when that side is empty (0: none yet)."""
    return (quote.bid if side == "sell" else quote.ask) or quote.reference


def trail_stop(side: str, mark: int, trail_price: int | None, trail_percent: int | None) -> int:
    """A trailing stop's stop for its mark, never rounded toward the market: a sell's ``mark - trail`` (or
    ``mark * (1 - percent/100)``) rounded down, a buy's ``mark + trail`` (``mark * (1 + percent/100)``) rounded
    up. ``trail_percent`` is in 1/10,000 of a percent (100 % = 1,000,000)."""
    if trail_price is not None:
        return max(mark - trail_price, 0) if side == "sell" else mark + trail_price
    pct = trail_percent or 0
    if side == "sell":
        return mark * (1_000_000 - pct) // 1_000_000
    return ceil_div(mark * (1_000_000 + pct), 1_000_000)


def pre_trade(req: OrderRequest, quote: Quote | None, rules: Rules) -> None:
    """Refuse what must not reach the market: closed market, unknown or halted symbol, a limit off its collar.

    Trading is gated by the feed alone (one source of truth): the market's hours are its system events (orders
    only between Q and M; before the feed has said anything the market is closed), a symbol's halt, LULD pause,
    quotation-only period or operational halt is its ``halted`` flag. The fallback: a quote from a source that is
    not a feed (``market_open`` None: a fixed price table, in tests and benchmarks) is open; the operator's
    ``Rules.market_open`` switch closes everything."""
    if not rules.market_open:
        raise ApiError(422, "market_closed", "the market is closed")
    if quote is None:
        raise ApiError(422, "unknown_symbol", f"no such symbol: {req.symbol}")
    if quote.market_open is False and not _taken_outside_hours(req, quote):
        raise ApiError(422, "market_closed", "the market is closed (outside market hours, as the feed says)"
                       + ("; an extended-hours order is taken 04:00-09:30 and 16:00-20:00 exchange time"
                          if req.extended_hours else ""))
    if req.tif == "opg" and quote.market_open:
        raise ApiError(422, "opg_after_open", "the opening cross is over: an opg order is taken before the open")
    if quote.halted:
        why = " ".join(x for x in (_STATES.get(quote.trading_state, ""), quote.trading_reason) if x)
        raise ApiError(422, "symbol_halted", f"{req.symbol} is halted" + (f" ({why})" if why else ""))
    if quote.stale:
        raise ApiError(503, "quote_unavailable", f"the price of {req.symbol} cannot be vouched for right now")
    if req.type == "market" and rules.max_quote_age and quote.age > rules.max_quote_age:
        # a frozen quote (its publisher gone, or Redis down past the age) must not price a market order
        raise ApiError(422, "quote_stale", f"the last quote of {req.symbol} is {quote.age:.1f} s old (at most "
                                          f"{rules.max_quote_age:g} s for a market order); send a limit order")
    ref = quote.reference
    if ref <= 0:
        raise ApiError(422, "no_market", f"{req.symbol} has no price to trade against")
    if req.type == "market" and req.side == "sell" and not quote.bid:
        raise ApiError(422, "no_market", f"{req.symbol} has no bid")
    if req.limit_price is not None and not req.is_stop:  # a resting stop_limit's limit may be any positive price
        band = ref * rules.collar_bps // 10_000
        if not ref - band <= req.limit_price <= ref + band:
            raise ApiError(422, "limit_off_collar",
                           f"limit {format_price(req.limit_price)} is outside {format_price(ref - band)}"
                           f"-{format_price(ref + band)} ({rules.collar_bps / 100:g}% around {format_price(ref)})")


def _taken_outside_hours(req: OrderRequest, quote: Quote) -> bool:
    """Orders the feed's closed market still takes: opg (for the next opening cross) and extended-hours limits
    in the pre-market and after-hours windows the feed announces (system events S..Q and M..E)."""
    return req.tif == "opg" or (req.extended_hours and quote.market_phase in ("pre_market", "after_hours"))


_STATES = {"H": "halted", "P": "paused", "Q": "quotation only"}


class FillRefused(ValueError):
    """An execution that does not fit its order: a counterparty fault, never applied. ``code`` names the rule
    (the same code the database's own check, migration 006, raises); the execution worker dead-letters it."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def fill_refusal(order: Mapping[str, Any], *, symbol: str, side: str, qty: int, price: int) -> FillRefused | None:
    """Why an execution of ``qty`` at ``price`` on ``symbol``/``side`` cannot apply to ``order`` (None: it can).
    Buys never fill above their limit or the price their cash was held at; sells never below their limit; price
    improvement is fine. The ledger refuses the same things in the database (the last line)."""
    if symbol != order["symbol"] or side != order["side"]:
        return FillRefused("fill_wrong_instrument",
                           f"{side} {symbol} reported for a {order['side']} {order['symbol']} order")
    if Status(order["status"]) in TERMINAL:
        return FillRefused("fill_order_closed", f"the order is already {order['status']}")
    if qty <= 0 or price <= 0:
        return FillRefused("fill_malformed", f"{qty} at {price}")
    if int(order["filled_qty"]) + qty > int(order["qty"]):
        return FillRefused("fill_overfills", f"{qty} more on {order['filled_qty']} of {order['qty']} filled")
    limit = order["limit_price"]
    if side == "buy":
        ceilings = [int(p) for p in (limit, order["reserve_price"]) if p]
        if ceilings and price > min(ceilings):
            return FillRefused("fill_beyond_limit", f"buy filled at {format_price(price)}, limit "
                               f"{format_price(min(ceilings))}")
    elif limit is not None and price < int(limit):
        return FillRefused("fill_beyond_limit", f"sell filled at {format_price(price)}, limit {format_price(limit)}")
    return None


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def limit_price(text: str) -> int:
    """A request's ``limit_price`` in price units, or the 422 ``invalid_limit_price`` (placement and replace)."""
    try:
        limit = parse_price(text)
    except ValueError as e:
        raise ApiError(422, "invalid_limit_price", str(e)) from e
    if limit <= 0:
        raise ApiError(422, "invalid_limit_price", "limit_price must be positive")
    return limit


def shard_of(user_id: str, shards: int) -> int:
    """The ledger shard holding a user: stable across processes and releases (CRC-32, not hash())."""
    return crc32_partition(user_id, shards)


def quantity(qty: int) -> str:
    """A quantity in millionths as an exact decimal string of shares."""
    return format_qty(qty)


def money(amount: int) -> str:
    """Fixed-point money as an exact decimal string."""
    return format_price(amount)


def parse_money(text: str) -> int:
    try:
        value = parse_price(text)
    except ValueError as e:
        raise ApiError(422, "invalid_amount", str(e)) from e
    return value


__all__ = ["EXTENDED_SUFFIX", "PRICE_SCALE", "QTY_SCALE", "TIFS", "ApiError", "FillRefused", "OrderRequest", "Quote",
           "Rules", "Status", "fill_refusal", "initial_mark", "notional_sell_qty", "notional_terms", "parse_order",
           "pre_trade",
           "reserve_price", "shard_of", "trail_stop",
           "transition"]
