"""When a resting stop triggers: pure. Resting stops and the current quote in, decisions out; no I/O, no clock.

The rule (README "Stop, stop-limit and trailing-stop orders"):
- A **buy** stop triggers when the best **ask** reaches its stop (``ask >= stop``), a **sell** stop when the best
  **bid** does (``bid <= stop``): the price the triggered order would trade at, not the last sale (a last sale
  can print away from the market; the side it would hit cannot). A side with no price triggers nothing.
- A **trailing stop** keeps a mark: a sell's high-water mark (the highest bid since placement), a buy's low-water
  mark (the lowest ask). Its stop follows the mark (``model.trail_stop``: ``mark - trail_price`` or
  ``mark * (1 - trail_percent/100)`` for a sell, the mirror for a buy), never back; it triggers as a stop does.
- **Gating.** Only an eligible quote counts: within market hours as the feed says (``Quote.market_open`` not
  False), not halted or paused (``Quote.halted``), not stale or older than ``max_age``, and the operator's switch
  (``Rules.market_open``) on. An ineligible quote neither triggers nor moves a mark, so a stop resting through a
  halt or the night triggers on the first eligible quote after it, at that quote's price.

- **The day's end.** A ``day`` stop that has not triggered expires at the day's rollover, as a routed day order
  does at the market maker: when the feed has ended system hours (its system event E, or C, end of messages,
  after it: ``session_ended``). Nothing else counts as the end (a feed that has said nothing, or only O, start of
  messages, after a restart, is closed but has not rolled the day over), so a restart never expires a stop; a
  ``gtc`` stop rests on. No stop triggers meanwhile (outside market hours no quote is eligible).

The decision names the price that triggered (the ask or bid) and the order's final mark and stop; applying it
(one transaction, exactly once, ``order_api.stop_watcher``) is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from order_api.model import OrderRequest, Quote, Rules, initial_mark, trail_stop
from vocab.prices import PRICE_SCALE

PCT_SCALE = PRICE_SCALE  # trail_percent in 1/10,000 of a percent: "1.5" -> 15000 (parsed by the price rule)


def stop_terms(req: OrderRequest, quote: Quote) -> dict[str, Any]:
    """The order's stop columns at placement (migration 013; ``batching.Placement``'s fields of the same names): a
    stop's stop price, a trailing stop's trail and its mark and stop from the quote at placement; {} otherwise."""
    if not req.is_stop:
        return {}
    mark = initial_mark(req.side, quote) if req.type == "trailing_stop" else None
    stop = req.stop_price if mark is None else trail_stop(req.side, mark, req.trail_price, req.trail_percent)
    pct = Decimal(req.trail_percent) / PCT_SCALE if req.trail_percent is not None else None
    return {"stop_price": stop, "trail_percent": pct, "trail_price": req.trail_price, "trail_mark": mark}


@dataclass(frozen=True, slots=True)
class Resting:
    """What triggering needs of a ``pending_trigger`` order. ``stop``: its stop now (a trailing stop's follows its
    mark); ``mark``: a trailing stop's high-water (sell) or low-water (buy) mark, 0 before it has one."""

    order_id: Any
    side: str
    stop: int
    trail_price: int | None = None
    trail_percent: int | None = None
    mark: int = 0

    @property
    def trailing(self) -> bool:
        return self.trail_price is not None or self.trail_percent is not None

    @classmethod
    def of(cls, row: Any) -> Resting:
        """From an orders row (migration 013's columns; ``trail_percent`` is NUMERIC, a Decimal here)."""
        pct = row["trail_percent"]
        return cls(row["order_id"], row["side"], int(row["stop_price"] or 0),
                   int(row["trail_price"]) if row["trail_price"] is not None else None,
                   int(Decimal(pct) * PCT_SCALE) if pct is not None else None, int(row["trail_mark"] or 0))


@dataclass(frozen=True, slots=True)
class Triggered:
    """The books crossed the stop: route the order now. ``price``: the ask (buy) or bid (sell) that crossed."""

    order_id: Any
    price: int
    stop: int
    mark: int


@dataclass(frozen=True, slots=True)
class Trailed:
    """A trailing stop's mark moved (and its stop with it), without triggering."""

    order_id: Any
    stop: int
    mark: int


SESSION_END_EVENTS = frozenset("EC")  # ITCH system events: end of system hours, end of messages


def session_ended(quotes: Iterable[Quote]) -> bool:
    """Has the feed rolled the day over (the rule above)? The market's status is market-wide: any quote says."""
    return any(q.market_event in SESSION_END_EVENTS for q in quotes)


def expires(tif: str, ended: bool) -> bool:
    """Does a resting stop of time in force ``tif`` expire now? (``ended``: :func:`session_ended`)"""
    return ended and tif == "day"


def eligible(quote: Quote | None, rules: Rules) -> bool:
    """May this quote trigger a stop or move a mark? (the gating rule above)"""
    return (quote is not None and rules.market_open and quote.market_open is not False and not quote.halted
            and not quote.is_stale(rules.max_quote_age))


def step(order: Resting, quote: Quote | None, rules: Rules) -> Triggered | Trailed | None:
    """What ``quote`` does to ``order``: trigger it, move its trail, or nothing."""
    if quote is None or not eligible(quote, rules):
        return None
    price = quote.ask if order.side == "buy" else quote.bid
    if price <= 0:
        return None
    stop, mark = order.stop, order.mark
    if order.trailing:
        if order.side == "sell":
            mark = max(mark, price)
        else:
            mark = min(mark, price) if mark else price
        stop = trail_stop(order.side, mark, order.trail_price, order.trail_percent)
        if order.stop and stop != order.stop:
            # the stop only ever tightens: a mark that moved the wrong way would be a bug upstream
            stop = max(stop, order.stop) if order.side == "sell" else min(stop, order.stop)
    crossed = price >= stop if order.side == "buy" else price <= stop
    if crossed and stop > 0:
        return Triggered(order.order_id, price, stop, mark)
    if (stop, mark) != (order.stop, order.mark):
        return Trailed(order.order_id, stop, mark)
    return None


def sweep(orders: list[Resting], quotes: dict[str, Quote], symbols: dict[Any, str],
          rules: Rules) -> list[Triggered | Trailed]:
    """Every decision for ``orders`` (``symbols``: order id -> its symbol) against the current ``quotes``."""
    out: list[Triggered | Trailed] = []
    for order in orders:
        decision = step(order, quotes.get(symbols[order.order_id]), rules)
        if decision is not None:
            out.append(decision)
    return out
