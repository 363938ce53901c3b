"""``tickfan account USER``: a user's account as the platform shows it (GET /v1/account), their latest activities
(GET /v1/activities), and with ``--follow`` every change as it arrives on the WebSocket ``positions`` channel."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from tickfan.args import add_client_tls_arguments, client_tls


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", help="user id (a token is minted for it with $TICKFAN_JWT_SECRET, or the demo's "
                                     "development key when it is unset)")
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="order API (default %(default)s)")
    parser.add_argument("--stream", default="ws://127.0.0.1:8765/v1/stream",
                        help="WebSocket stream, for --follow (default %(default)s)")
    parser.add_argument("--activities", type=int, default=10, metavar="N",
                        help="print the N newest activities (fills, deposits, fees, settlements; 0: none; at most "
                             "100; default %(default)s)")
    parser.add_argument("--follow", type=float, default=0.0, metavar="SECONDS",
                        help="then print each account update from the positions channel for this long (default: "
                             "do not follow)")
    add_client_tls_arguments(parser)


def main(args: argparse.Namespace) -> int:
    import httpx
    import websockets

    from tickfan.devkey import DevKeyError, use_dev_key
    try:
        use_dev_key(create=False)
    except DevKeyError as e:
        print(f"tickfan account: {e}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(account(args))
    except (OSError, websockets.exceptions.WebSocketException, httpx.HTTPError) as e:
        print(f"tickfan account: cannot reach the platform ({args.api}, {args.stream}): {e}", file=sys.stderr)
        return 1


def field(obj: Any, key: str) -> Any:
    """``key`` of a JSON object (GET /v1/account) or of a protobuf message (AccountUpdate): the same names."""
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def account_line(a: Any) -> str:
    """One line of an account: a JSON body of GET /v1/account or an AccountUpdate."""
    held = ", ".join(f"{field(p, 'symbol')} {field(p, 'qty')} @ {field(p, 'avg_entry_price')}"
                     for p in field(a, "positions"))
    return (f"v{field(a, 'version')} cash {field(a, 'cash')} (settled {field(a, 'settled_cash')}, unsettled "
            f"{field(a, 'unsettled_cash')}) buying power {field(a, 'buying_power')} withdrawable "
            f"{field(a, 'withdrawable')} | {held or 'no positions'}")


async def account(args: argparse.Namespace) -> int:
    import httpx
    import websockets

    from tickfan_proto import stream_pb2
    from vocab.auth import mint_token

    headers = {"authorization": f"Bearer {mint_token(args.user)}"}
    tls = client_tls(args, args.api, args.stream)
    async with httpx.AsyncClient(base_url=args.api, timeout=10, verify=tls or True, headers=headers) as http:
        r = await http.get("/v1/account")
        if r.status_code >= 400:
            err = r.json().get("error", {})
            print(f"refused ({r.status_code} {err.get('code')}): {err.get('message')}", file=sys.stderr)
            return 1
        print(account_line(r.json()), flush=True)
        if args.activities > 0:
            page = (await http.get("/v1/activities", params={"page_size": min(args.activities, 100)})).json()
            for a in page["activities"]:
                what = (f"{a['side']} {a['qty']} {a['symbol']} @ {a['price']}" if a["activity_type"] == "FILL"
                        else a.get("order_id", ""))
                print(f"  {a['transaction_time']}  {a['activity_type']:<6} {a['net_amount']:>14}  {what}")
    if args.follow <= 0:
        return 0
    deadline = time.monotonic() + args.follow
    async with websockets.connect(args.stream, additional_headers=headers, max_size=2**22,
                                  ssl=tls if args.stream.startswith("wss://") else None) as ws:
        sub = stream_pb2.ClientMessage()
        sub.subscribe.channels.append("positions")
        await ws.send(sub.SerializeToString())
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            if isinstance(raw, str):
                continue
            msg = stream_pb2.ServerMessage.FromString(raw)
            if msg.WhichOneof("kind") == "error":
                print(f"stream error {msg.error.code}: {msg.error.message}", file=sys.stderr)
            elif msg.WhichOneof("kind") == "account":
                print(("snapshot " if msg.account.snapshot else "update   ") + account_line(msg.account), flush=True)
    return 0
