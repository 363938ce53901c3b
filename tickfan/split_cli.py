"""``tickfan split SYMBOL N:M``: apply a stock split to the ledger (an operator's command).

N new shares for every M old ones (2:1 forward, 1:10 reverse). Every holder's shares are scaled exactly in
millionths, the sub-millionth remainder paid as cash-in-lieu at the split-adjusted price of ``--price`` (needed
when M > 1 after reduction); cost basis is kept; open orders on the symbol that no market maker has are
rescaled with it (quantity x N/M, prices to the tick never against the user; reason ``corporate_action``), those
at the market maker first replaced there (FIX 35=G; cancelled when that is refused), the split waiting
(``--wait``) for their answers.
One transaction per shard; idempotent by the split id (default ``SYMBOL:N:M:DATE``). README "Stock splits".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time

from order_api.db import Ledger
from order_api.model import ApiError, parse_money
from order_api.settlement import exchange_today
from order_api.split_db import Split, apply_split, check_terms, symbol_known
from order_api.splits import BadSplit, adjusted_price, parse_ratio, split_id
from tickfan.order_client import run as _run
from tickfan.trading_cli import add_db, dsns_of
from vocab.prices import format_price
from vocab.quantities import format_qty

RETRY_INTERVAL = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("symbol", help="the ticker symbol being split (one the ledger knows)")
    parser.add_argument("ratio", help="N:M, N new shares for every M old ones: 2:1 or 3:2 forward, 1:10 reverse")
    parser.add_argument("--effective", metavar="DATE", default=None,
                        help="the split's effective date, YYYY-MM-DD (default: today in exchange time); part of "
                             "the default split id")
    parser.add_argument("--price", metavar="DOLLARS", default=None,
                        help="the pre-split reference price (the last close), for the cash-in-lieu of remainders "
                             "below a millionth of a share; required unless M is 1 after reducing the ratio")
    parser.add_argument("--id", dest="split_id", metavar="ID", default=None,
                        help="the split's id (default SYMBOL:N:M:DATE): applying an id again changes nothing")
    parser.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for the market maker to cancel orders on the symbol it holds "
                             "(default %(default)s); run again to resume after a timeout")
    add_db(parser)


def split_of(args: argparse.Namespace) -> Split:
    """The split the arguments name; BadSplit (a message for the operator) when they do not name one."""
    symbol = args.symbol.strip().upper()
    if not symbol or len(symbol) > 8 or not symbol.replace(".", "").isalnum() or not symbol.isascii():
        raise BadSplit(f"not a ticker symbol: {args.symbol!r}")
    ratio = parse_ratio(args.ratio)
    try:
        effective = dt.date.fromisoformat(args.effective) if args.effective else exchange_today()
    except ValueError:
        raise BadSplit(f"not a date (YYYY-MM-DD): {args.effective!r}") from None
    price = 0
    if args.price is not None:
        try:
            price = parse_money(args.price)
        except ApiError as e:
            raise BadSplit(f"--price: {e.message}") from None
        if price <= 0:
            raise BadSplit("--price must be positive")
    split = Split(args.split_id or split_id(symbol, ratio, effective.isoformat()), symbol, ratio, price, effective)
    check_terms(split)
    return split


async def run(split: Split, dsns: list[str], wait: float) -> int:
    ledger = await Ledger.connect(dsns, max_size=2)
    try:
        if not await symbol_known(ledger, split.symbol):
            raise BadSplit(f"unknown symbol {split.symbol}: no position, order or split of it in the ledger")
        deadline = time.monotonic() + wait
        while True:
            outcomes = await apply_split(ledger, split)
            waiting = [o for o in outcomes if o.state == "waiting"]
            if not waiting or time.monotonic() >= deadline:
                break
            await asyncio.sleep(RETRY_INTERVAL)
    finally:
        await ledger.close()
    for shard, o in enumerate(outcomes):
        moved = sum(h.new_qty for h in o.holders) - sum(h.old_qty for h in o.holders)
        print(f"shard {shard}: {o.state}: {len(o.holders)} holder(s), shares {format_qty(moved)} net, cash-in-lieu "
              f"{format_price(sum(h.cash_in_lieu for h in o.holders))}, {o.rescaled} order(s) rescaled, "
              f"{o.cancelled} cancelled, "
              f"{o.replace_requested} replace(s) and {o.cancel_requested} cancel(s) asked of the market maker"
              + (f", house fractional {format_qty(o.house.old_qty)} -> {format_qty(o.house.new_qty)}"
                 if o.house else ""))
    if waiting:
        print(f"tickfan split: orders on {split.symbol} are still at the market maker after {wait:.0f} s; nothing "
              "split on those shards: run the same command again once they are replaced or cancelled",
              file=sys.stderr)
        return 1
    adjusted = (f" (split-adjusted price {format_price(adjusted_price(split.price, split.ratio))})"
                if split.price else "")
    print(f"split {split.split_id}: {split.symbol} {split.ratio} effective {split.effective}{adjusted}")
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        split = split_of(args)
    except BadSplit as e:
        print(f"tickfan split: {e}", file=sys.stderr)
        return 2

    async def go() -> int:
        try:
            return await run(split, dsns_of(args), args.wait)
        except BadSplit as e:
            print(f"tickfan split: {e}", file=sys.stderr)
            return 2
    return _run(go())
