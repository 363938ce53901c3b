"""How an order row is shown: JSON for the HTTP API, an OrderUpdate frame for the user's WebSocket."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from order_api.model import money
from tickfan_proto import stream_pb2


def _avg(row: Mapping[str, Any]) -> int:
    filled = int(row["filled_qty"])
    return int(row["filled_notional"]) // filled if filled else 0


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
        "qty": int(row["qty"]),
        "limit_price": money(int(row["limit_price"])) if row["limit_price"] is not None else None,
        "status": row["status"],
        "filled_qty": filled,
        "avg_fill_price": money(_avg(row)) if filled else None,
        "cancel_requested": bool(row["cancel_requested"]),
        "reason": row["reason"] or None,
        "version": int(row["version"]),
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
    u.qty = int(row["qty"])
    u.filled_qty = int(row["filled_qty"])
    u.limit_price = int(row["limit_price"] or 0)
    u.last_fill_qty = last_qty
    u.last_fill_price = last_price
    u.avg_fill_price = _avg(row)
    u.reason = row["reason"] or ""
    u.version = int(row["version"])
    u.time_in_force = row.get("tif", "") or ""
    u.extended_hours = bool(row.get("extended_hours", False))
    u.event_time_ns = time.time_ns()
    return msg.SerializeToString()
