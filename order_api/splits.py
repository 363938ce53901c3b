"""Stock splits, pure: the ratio, each holder's new quantity, cash-in-lieu, and the journal lines of one holder.

A split "N:M" gives N new shares for every M old ones (forward: N > M, e.g. 2:1; reverse: N < M, e.g. 1:10); the
ratio is kept reduced. Quantities are in millionths (``vocab.quantities.QTY_SCALE``), money in 1/10,000 of a dollar.

The rule (README "Stock splits"): a holder of Q millionths gets ``floor(Q * N / M)`` millionths. What the floor cuts
off, ``r / M`` of a millionth (0 <= r < M), is paid as cash-in-lieu at the split-adjusted price ``P * M / N`` (``P``
the pre-split reference price), rounded DOWN to the money unit as a sale's proceeds are: ``floor(r * P / (QTY_SCALE *
N))``. Both come from the house's ``issuer`` account (the shares the issuer creates or retires, the cash it pays),
so every journal transaction balances. The cost basis is not touched: the average price moves by M/N by itself;
a holding that a reverse split turns into nothing takes its whole basis with it (cost 0, the cash-in-lieu paid).

Open orders (README "Stock splits", :func:`rescale`): the quantity becomes ``floor(Q * N / M)`` (an order for whole
shares stays whole: rounded down to the share), prices ``P * M / N`` rounded to the tick never against the user
(a buy's limit down, a sell's up; a stop so that it triggers no earlier: a buy's up, a sell's down), a trailing
stop's trail amount and mark scaled and its stop recomputed from them. An order the rule would leave with no
quantity or no price, or a notional one (priced from the pre-split quote), is cancelled instead (None).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from order_api.ledger import HOUSE, USD, Entry, balanced
from order_api.model import trail_stop
from vocab.prices import PRICE_SCALE
from vocab.quantities import QTY_SCALE

ISSUER = "issuer"  # the house account on the other side of every split line
MAX_RATIO_TERM = 10_000
_RATIO_RE = re.compile(r"^(\d{1,6}):(\d{1,6})\Z", re.ASCII)


class BadSplit(ValueError):
    """A split that must not be applied (the message says why); nothing was changed."""


@dataclass(frozen=True, slots=True)
class Ratio:
    """N new shares for M old ones, reduced (gcd 1), N <> M."""

    new: int
    old: int

    def __str__(self) -> str:
        return f"{self.new}:{self.old}"

    @property
    def forward(self) -> bool:
        return self.new > self.old


def parse_ratio(text: str) -> Ratio:
    """"N:M" (positive integers up to 10,000, N <> M) as a reduced :class:`Ratio`; :class:`BadSplit` otherwise."""
    m = _RATIO_RE.match(text.strip())
    if m is None:
        raise BadSplit(f"not a split ratio N:M (e.g. 2:1 forward, 1:10 reverse): {text[:40]!r}")
    new, old = int(m.group(1)), int(m.group(2))
    if not (0 < new <= MAX_RATIO_TERM and 0 < old <= MAX_RATIO_TERM):
        raise BadSplit(f"split ratio terms must be 1..{MAX_RATIO_TERM}: {text!r}")
    if new == old:
        raise BadSplit(f"a {text} split changes nothing")
    g = math.gcd(new, old)
    return Ratio(new // g, old // g)


@dataclass(frozen=True, slots=True)
class Holding:
    """One holder's result: the new quantity, the cut-off remainder (in 1/M millionths) and its cash-in-lieu."""

    old_qty: int
    new_qty: int
    remainder: int
    cash_in_lieu: int


def scale(qty: int, ratio: Ratio, price: int) -> Holding:
    """What a split at ``ratio`` does to ``qty`` millionths, cash-in-lieu at pre-split reference ``price``."""
    if qty < 0 or price < 0:
        raise BadSplit("a split scales holdings and prices that are not negative")
    new, remainder = divmod(qty * ratio.new, ratio.old)
    return Holding(qty, new, remainder, remainder * price // (QTY_SCALE * ratio.new))


def needs_price(ratio: Ratio) -> bool:
    """Whether some holding can leave a remainder (and so need a reference price for its cash-in-lieu)."""
    return ratio.old != 1


def adjusted_price(price: int, ratio: Ratio) -> int:
    """The split-adjusted price of ``price`` (shown to the operator), to the nearest unit."""
    return (2 * price * ratio.old + ratio.new) // (2 * ratio.new)


def tick(price: int) -> int:
    """The price increment at ``price`` (Reg NMS rule 612): a cent from $1.00 up, 1/10,000 of a dollar below."""
    return 100 if price >= PRICE_SCALE else 1


def scale_price(price: int, ratio: Ratio, *, up: bool) -> int:
    """``price * M / N`` rounded to the tick of the exact result: up (``up``) or down."""
    num, den = price * ratio.old, ratio.new
    step = 100 if num >= PRICE_SCALE * den else 1
    units = -(-num // (den * step)) if up else num // (den * step)
    return units * step


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What a split changes of an open order no market maker has (nothing filled yet): quantity in millionths,
    prices in 1/10,000 of a dollar (None: the order has none). ``reserve``: a buy's per-share price held."""

    side: str
    qty: int
    limit_price: int | None = None
    stop_price: int | None = None
    reserve: int = 0
    trail_price: int | None = None
    trail_percent: int | None = None  # 1/10,000 of a percent (``stops.PCT_SCALE``), never scaled
    trail_mark: int | None = None
    notional: int | None = None

    @property
    def trailing(self) -> bool:
        return self.trail_price is not None or self.trail_percent is not None


def rescale(order: OrderTerms, ratio: Ratio) -> OrderTerms | None:
    """``order``'s terms after the split (the rule above), or None when it is to be cancelled instead."""
    if order.notional is not None:
        return None
    qty = order.qty * ratio.new // ratio.old
    if order.qty % QTY_SCALE == 0:
        qty -= qty % QTY_SCALE
    buy = order.side == "buy"
    limit = None if order.limit_price is None else scale_price(order.limit_price, ratio, up=not buy)
    trail = None if order.trail_price is None else max(1, adjusted_price(order.trail_price, ratio))
    mark = None if order.trail_mark is None else adjusted_price(order.trail_mark, ratio)
    if order.trailing and mark:
        stop: int | None = trail_stop(order.side, mark, trail, order.trail_percent)
    else:
        stop = None if order.stop_price is None else scale_price(order.stop_price, ratio, up=buy)
    if qty <= 0 or limit == 0 or (stop == 0 and not order.trailing):
        return None
    # a limit buy holds its limit; a market or stop buy its collar price, scaled down to the unit (so the new hold,
    # the new quantity at it, is never more than the old one: a split must not take cash a user did not hold)
    reserve = 0 if not buy else limit if limit is not None else order.reserve * ratio.old // ratio.new
    return OrderTerms(order.side, qty, limit, stop, reserve, trail, order.trail_percent, mark)


def holder_entries(user: str, symbol: str, h: Holding) -> list[Entry]:
    """A holder's split: their shares move to the new quantity, the cash-in-lieu is paid, both against ``issuer``."""
    delta = h.new_qty - h.old_qty
    return balanced([Entry(user, "shares", symbol, delta), Entry(HOUSE, ISSUER, symbol, -delta),
                     Entry(user, "cash", USD, h.cash_in_lieu), Entry(HOUSE, ISSUER, USD, -h.cash_in_lieu)])


def house_entries(symbol: str, h: Holding) -> list[Entry]:
    """The house's ``fractional`` shares of the symbol, scaled like a holder's (the house pays itself no cash: its
    remainder is retired to the issuer)."""
    delta = h.new_qty - h.old_qty
    return balanced([Entry(HOUSE, "fractional", symbol, delta), Entry(HOUSE, ISSUER, symbol, -delta)])


def split_id(symbol: str, ratio: Ratio, effective: str) -> str:
    """The default id of a split: applying the same split (symbol, ratio, date) twice is applying it once."""
    return f"{symbol}:{ratio}:{effective}"


def split_invariants(mine: Callable[[str], str], in_scope: Callable[[], str]) -> list[tuple[str, str]]:
    """The ledger's rules for splits (read by ``Ledger.check``); ``mine``/``in_scope``: its scoping helpers."""
    s = QTY_SCALE
    return [
        # each holder's recorded result follows the rule: floor(Q*N/M), cash floor(r*P/(SCALE*N)), users only paid
        ("SELECT h.split_id, h.user_id, h.old_qty, h.new_qty, h.cash_in_lieu FROM split_holders h JOIN splits s "
         "USING (split_id) WHERE (h.new_qty <> div(h.old_qty::numeric * s.ratio_new, s.ratio_old) "
         "OR h.cash_in_lieu <> CASE WHEN h.user_id = '' THEN 0 ELSE "
         f"div(mod(h.old_qty::numeric * s.ratio_new, s.ratio_old) * s.price, {s}::numeric * s.ratio_new) END) "
         f"AND {mine('h.user_id')}",
         "a split's holder does not follow the split rule"),
        # and the journal moved exactly that: the holder's shares by new - old, their cash by the cash-in-lieu
        ("SELECT h.split_id, h.user_id, h.new_qty - h.old_qty AS delta, h.cash_in_lieu, j.shares, j.cash "
         "FROM split_holders h JOIN splits s USING (split_id) LEFT JOIN (SELECT txn_id, "
         "sum(amount) FILTER (WHERE user_id <> '' AND account = 'shares' OR user_id = '' AND account = 'fractional') "
         "AS shares, sum(amount) FILTER (WHERE user_id <> '' AND account = 'cash') AS cash "
         "FROM journal WHERE kind = 'split' GROUP BY txn_id) j USING (txn_id) "
         "WHERE (coalesce(j.shares, 0) <> h.new_qty - h.old_qty OR coalesce(j.cash, 0) <> h.cash_in_lieu) "
         f"AND {mine('h.user_id')}",
         "a split's journal differs from its holder's result"),
        # a split transaction moves one holder's shares of one symbol and cash-in-lieu, against the issuer only (the
    # issuer moving outside a split is the general rule's "a journal line moves value where its kind may not")
        ("SELECT txn_id, count(DISTINCT user_id) FILTER (WHERE user_id <> '') AS users, "
         "count(DISTINCT asset) FILTER (WHERE asset <> 'USD') AS symbols FROM journal WHERE kind = 'split' "
         f"AND {in_scope()} GROUP BY txn_id HAVING count(DISTINCT user_id) FILTER (WHERE user_id <> '') > 1 "
         "OR count(DISTINCT asset) FILTER (WHERE asset <> 'USD') > 1 "
         "OR bool_or(NOT (user_id = '' AND account IN ('issuer', 'fractional') "
         "OR user_id <> '' AND account IN ('shares', 'cash')))",
         "a split transaction moves more than one holder's shares of one symbol"),
    ]
