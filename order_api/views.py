"""How an order row is shown: JSON for the HTTP API, an OrderUpdate frame for the user's WebSocket."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from order_api.model import money, quantity
from tickfan_proto import stream_pb2
from vocab.quantities import QTY_SCALE, whole_shares


def _avg(row: Mapping[str, Any]) -> int:
    """The average fill price: the money the fills moved per share (quantities are in millionths)."""
    filled = int(row["filled_qty"])
    return int(row["filled_notional"]) * QTY_SCALE // filled if filled else 0


def _notional(row: Mapping[str, Any]) -> str | None:
    notional = row.get("notional")
    return money(int(notional)) if notional is not None else None


def _price(row: Mapping[str, Any], column: str) -> str | None:
    value = row.get(column)
    return money(int(value)) if value is not None else None


def _percent(row: Mapping[str, Any]) -> str | None:
    """trail_percent (NUMERIC) as the shortest exact decimal: "1.5", not "1.5000"."""
    pct = row.get("trail_percent")
    if pct is None:
        return None
    text = f"{Decimal(pct):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ns(at: datetime | None) -> int:
    """A timestamptz as Unix nanoseconds, exactly (0 for none)."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1_000 if at is not None else 0


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def order_json(row: Mapping[str, Any]) -> dict[str, Any]:
    filled = int(row["filled_qty"])
    return {
        "order_id": str(row["order_id"]),
        "idempotency_key": row["idempotency_key"],
        "symbol": row["symbol"],
        "side": row["side"],
        "type": row["type"],
        "time_in_force": row["tif"],
        "extended_hours": bool(row.get("extended_hours", False)),
        "qty": quantity(int(row["qty"])),
        "notional": _notional(row),
        "limit_price": money(int(row["limit_price"])) if row["limit_price"] is not None else None,
        "status": row["status"],
        "filled_qty": quantity(filled),
        "avg_fill_price": money(_avg(row)) if filled else None,
        "stop_price": _price(row, "stop_price"),
        "trail_percent": _percent(row),
        "trail_price": _price(row, "trail_price"),
        "hwm": _price(row, "trail_mark"),
        "triggered_at": row["triggered_at"].isoformat() if row.get("triggered_at") is not None else None,
        "trigger_price": _price(row, "trigger_price"),
        "cancel_requested": bool(row["cancel_requested"]),
        "reason": row["reason"] or None,
        "version": int(row["version"]),
        "replaces": str(row["replaces"]) if row.get("replaces") else None,
        "replaced_by": str(row["replaced_by"]) if row.get("replaced_by") else None,
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def order_update_frame(row: Mapping[str, Any], *, last_qty: int = 0, last_price: int = 0) -> bytes:
    """The complete ServerMessage a fan-out node forwards unchanged to the owner's connections."""
    msg = stream_pb2.ServerMessage()
    u = msg.order_update
    u.order_id = str(row["order_id"])
    u.symbol = row["symbol"]
    u.side = row["side"]
    u.type = row["type"]
    u.status = row["status"]
    u.qty = whole_shares(int(row["qty"]))
    u.filled_qty = whole_shares(int(row["filled_qty"]))
    u.limit_price = int(row["limit_price"] or 0)
    u.last_fill_qty = whole_shares(last_qty)
    u.qty_decimal = quantity(int(row["qty"]))
    u.filled_qty_decimal = quantity(int(row["filled_qty"]))
    u.last_fill_qty_decimal = quantity(last_qty)
    u.notional = _notional(row) or ""
    u.last_fill_price = last_price
    u.avg_fill_price = _avg(row)
    u.reason = row["reason"] or ""
    u.version = int(row["version"])
    u.time_in_force = row.get("tif", "") or ""
    u.extended_hours = bool(row.get("extended_hours", False))
    u.stop_price = int(row.get("stop_price") or 0)
    u.trail_percent = _percent(row) or ""
    u.trail_price = int(row.get("trail_price") or 0)
    u.triggered_at_ns = _ns(row.get("triggered_at"))
    u.trigger_price = int(row.get("trigger_price") or 0)
    u.replaces = str(row.get("replaces") or "")
    u.replaced_by = str(row.get("replaced_by") or "")
    u.event_time_ns = time.time_ns()
    return msg.SerializeToString()
