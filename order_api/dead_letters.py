"""What a dead letter of the execution worker carries: the report's fields, and the order, user and symbol it is
about as the log line's own fields (``tickfan.logs`` turns ``extra`` into JSON keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from order_api.fix import ExecutionReport


def log_fields(what: Mapping[str, Any]) -> dict[str, str]:
    """The order, user and symbol a dead letter is about, for the log line's own fields (tickfan.logs)."""
    fields: dict[str, str] = {}
    report = what.get("report")
    if isinstance(report, Mapping):
        for key, name in (("cl_ord_id", "order_id"), ("symbol", "symbol")):
            if report.get(key):
                fields[name] = str(report[key])
    entry = what.get("entry")
    if isinstance(entry, Mapping):
        for key in ("order_id", "user_id", "symbol"):
            value = entry.get(key.encode())
            if isinstance(value, bytes):
                fields[key] = value.decode(errors="replace")
    for key in ("order_id", "user_id", "symbol", "stream"):
        if what.get(key) is not None:
            value = what[key]
            fields[key] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return fields


def report_fields(r: ExecutionReport) -> dict[str, Any]:
    return {k: getattr(r, k) for k in ("cl_ord_id", "orig_cl_ord_id", "order_id", "exec_id", "exec_type",
                                       "ord_status", "symbol", "side", "last_qty", "last_px", "cum_qty", "text")}
