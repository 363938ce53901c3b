"""Bars as ``GET /v1/bars`` answers them (pure): exact decimal strings, as the quotes endpoint writes prices.

``{"symbol": "AAPL", "interval": "1m", "bars": [{"start_time_ns": ..., "start_time": "2026-11-26T14:31:00Z",
"open": "189.2500", "high": ..., "low": ..., "close": ..., "vwap": "189.2512", "volume": 300, "trades": 3,
"notional": "56775375000", "state": "final", "version": 0}, ...]}``, oldest first: the closed bars, then the
open one (state ``update``). ``vwap`` is notional / volume rounded half-even to 4 decimals (exact integer
arithmetic); a bar whose prints were all broken has volume 0 and null prices.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from normalize.bar_types import MINUTE, SECOND, Bar
from vocab.prices import format_price

BAR_INTERVALS = {"1s": SECOND, "1m": MINUTE}
DEFAULT_BARS = 390
MAX_BARS = 10_000


def iso_utc(epoch_ns: int) -> str:
    """ISO-8601 UTC of an epoch instant, to the second, plus the fraction only when it is not whole."""
    seconds, frac = divmod(epoch_ns, 1_000_000_000)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


def bar_record(bar: Bar) -> dict[str, Any]:
    empty = bar.trades == 0
    vwap = bar.vwap_price(4)

    def price(p: int) -> str | None:
        return None if empty else format_price(p)

    return {"start_time_ns": bar.start_ns, "start_time": iso_utc(bar.start_ns), "open": price(bar.open),
            "high": price(bar.high), "low": price(bar.low), "close": price(bar.close),
            "vwap": None if vwap is None else format_price(vwap), "volume": bar.volume, "trades": bar.trades,
            "notional": str(bar.notional), "state": bar.state, "version": bar.version}


def bars_record(symbol: str, interval: str, bars: list[Bar]) -> dict[str, Any]:
    return {"symbol": symbol, "interval": interval, "bars": [bar_record(b) for b in bars]}
