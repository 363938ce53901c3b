"""``tickfan replace``: its arguments and the PATCH body it sends (only the fields given)."""

from __future__ import annotations

from tickfan.cli import command_parser
from tickfan.replace_cli import body_of


def test_replace_sends_only_what_is_given() -> None:
    parser, run = command_parser("replace")
    args = parser.parse_args(["alice", "0b8f7c1e-0000-4000-8000-000000000001", "--qty", "6", "--limit", "181.00",
                              "--key", "r-1"])
    assert body_of(args) == {"idempotency_key": "r-1", "qty": 6, "limit_price": "181.00"}
    args = parser.parse_args(["alice", "x", "--qty", "0.5", "--tif", "gtc"])
    body = body_of(args)
    assert body["qty"] == "0.5" and body["time_in_force"] == "gtc" and "limit_price" not in body
    assert "idempotency_key" in body and "replace" in parser.format_help()
