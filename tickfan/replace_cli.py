"""``tickfan replace USER ORDER_ID [--qty N] [--limit P] [--tif day|gtc]``: replace an open limit order
(``PATCH /v1/orders/{id}``, order_api/replacing.py) and print what the market maker decided, from the user's
WebSocket ``orders`` channel: the old order ``replaced`` and its replacement, or the replace refused (too late)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

from tickfan.args import client_tls
from tickfan.order_client import add_order_client_arguments, run_order_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", help="user id (a token is minted for it as for `tickfan trade`)")
    parser.add_argument("order_id", help="the open limit order to replace")
    parser.add_argument("--qty", default=None, help="the order's new total quantity (what it filled counts): a whole "
                                                    "number or a decimal with at most 6 decimals")
    parser.add_argument("--limit", default=None, metavar="PRICE", help="the new limit price")
    parser.add_argument("--tif", choices=["day", "gtc"], default=None, help="the new time in force")
    add_order_client_arguments(parser, "the market maker's answer")


def main(args: argparse.Namespace) -> int:
    return run_order_client("replace", args, replace)


def body_of(args: argparse.Namespace) -> dict[str, Any]:
    """The PATCH body: only the fields given (the API refuses an empty one: nothing_changed)."""
    body: dict[str, Any] = {"idempotency_key": args.key or uuid.uuid4().hex}
    if args.qty is not None:
        body["qty"] = int(args.qty) if args.qty.isascii() and args.qty.isdigit() else args.qty
    if args.limit is not None:
        body["limit_price"] = args.limit
    if args.tif is not None:
        body["time_in_force"] = args.tif
    return body


async def replace(args: argparse.Namespace) -> int:
    import httpx
    import websockets

    from tickfan_proto import stream_pb2
    from vocab.auth import mint_token

    headers = {"authorization": f"Bearer {mint_token(args.user)}"}
    tls = client_tls(args, args.api, args.stream)
    async with websockets.connect(args.stream, additional_headers=headers, max_size=2**22,
                                  ssl=tls if args.stream.startswith("wss://") else None) as ws:
        sub = stream_pb2.ClientMessage()
        sub.subscribe.channels.append("orders")
        await ws.send(sub.SerializeToString())
        async with httpx.AsyncClient(base_url=args.api, timeout=10, verify=tls or True) as http:
            r = await http.patch(f"/v1/orders/{args.order_id}", json=body_of(args), headers=headers)
        if r.status_code >= 400:
            err = r.json().get("error", {})
            print(f"refused ({r.status_code} {err.get('code')}): {err.get('message')}", file=sys.stderr)
            return 1
        order = r.json()
        new = order.get("replaced_by")
        print(f"replace requested: order {order['order_id']} -> {new} (the market maker decides)", flush=True)
        if order["status"] == "replaced":
            return 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            except TimeoutError:
                break
            if isinstance(raw, str):
                continue
            msg = stream_pb2.ServerMessage.FromString(raw)
            if msg.WhichOneof("kind") != "order_update":
                continue
            u = msg.order_update
            if u.order_id == new:
                print(f"{u.status:<16} replacement {u.order_id}: {u.side} {u.qty_decimal} {u.symbol} limit "
                      f"{u.limit_price / 10_000:.4f} {u.time_in_force}", flush=True)
            elif u.order_id == order["order_id"] and u.version > order["version"]:
                if u.status == "replaced":
                    print(f"replaced         {u.order_id} (filled {u.filled_qty_decimal} before)", flush=True)
                    return 0
                if not u.replaced_by:
                    print(f"refused          the market maker was too late: the order is {u.status}", flush=True)
                    return 1
    print(f"no answer within {args.timeout:g} s; see GET /v1/orders/{args.order_id}", file=sys.stderr)
    return 1
