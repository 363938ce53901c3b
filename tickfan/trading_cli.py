"""The trading commands: ``tickfan migrate | api | token | deposit | trade | execute``.

Configuration is flags, ``TICKFAN_<OPTION>`` variables and the ``--config`` file (``tickfan.config``; the older
``TICKFAN_DATABASE_URLS``, ``TICKFAN_MIGRATE_DATABASE_URLS`` and ``TICKFAN_REDIS_URL`` are still read), and the
token keys (``TICKFAN_JWT_SECRET``...).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from order_api.db import DEFAULT_DSNS, Ledger, MigrationsMissing, MigrationsPending, migrate
from order_api.devtoken import DevTokens
from order_api.execution import DRAIN_TIMEOUT, UNKNOWN_GRACE
from order_api.limits import MAX_BODY, RATE, WINDOW, HttpLimits
from order_api.model import TERMINAL, Rules, Status, money, parse_money
from tickfan.args import add_tls_arguments, client_tls, hostport, tls_files
from tickfan.order_client import add_order_client_arguments, run_order_client
from tickfan.order_client import run as _run
from vocab.auth import Verifier
from vocab.digits import parse_ascii_int
from vocab.redisconn import open_redis

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def dsns_of(args: argparse.Namespace) -> list[str]:
    return list(args.db) if args.db else list(DEFAULT_DSNS)


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", action="append", metavar="DSN",
                        help="PostgreSQL DSN of a ledger shard, repeated once per shard in shard order (default: two "
                             "shards tickfan_0, tickfan_1 on 127.0.0.1:5432; TICKFAN_DB or TICKFAN_DATABASE_URLS: "
                             "comma-separated)")


def add_migrate_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--migrate-db", action="append", metavar="DSN",
                        help="DSN of each shard, in shard order, for applying migrations at start: the schema owner "
                             "(the superuser), while --db names the services' least-privilege role (default: --db, "
                             "the demo's single superuser)")


def migration_dsns(args: argparse.Namespace) -> list[str]:
    """Who applies migrations: ``--migrate-db``, else the services' own ``--db``."""
    dsns = list(args.migrate_db) if args.migrate_db else dsns_of(args)
    if len(dsns) != len(dsns_of(args)):
        raise SystemExit(f"tickfan: {len(dsns)} migration DSN(s) for {len(dsns_of(args))} shard(s)")
    return dsns


def add_redis(parser: argparse.ArgumentParser, *, alias: bool = True) -> None:
    """``--trading-redis`` (``--redis`` before: a node's ``--redis`` is where it publishes books)."""
    parser.add_argument("--trading-redis", *(["--redis"] if alias else []), default=DEFAULT_REDIS, metavar="URL",
                        help="Redis for the execution streams, order updates and quotes: redis://HOST:PORT/DB "
                             "for one server, redis+cluster://HOST:PORT[,HOST:PORT...] for a Redis Cluster "
                             "(default %(default)s" + ("; --redis is its old spelling)" if alias else ")"))


def add_ledger_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ledger-check-interval", type=float, metavar="SECONDS", default=60.0,
                        help="run the ledger's invariants (Ledger.check) this often and export the result on "
                             "/metrics as tickfan_ledger_check_problems; 0 turns it off (default %(default)s)")


def add_rules(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collar-bps", type=int, default=1_000,
                        help="limit collar and market-buy protection, in basis points of the reference price "
                             "(default %(default)s = 10%%)")
    parser.add_argument("--market-closed", action="store_true",
                        help="refuse every new order with market_closed (a trading halt of the whole platform); "
                             "market hours and symbol halts come from the feed's status events, not from here")
    parser.add_argument("--max-quote-age", type=float, default=5.0, metavar="SECONDS",
                        help="a market order needs a quote at most this old (its publisher's last change, or, "
                             "with Redis down, the last one read); older: 422 quote_stale; 0: no check "
                             "(default %(default)s)")
    parser.add_argument("--fee-bps", type=int, default=0,
                        help="fee on sell proceeds in basis points, journalled as 'fee' (default %(default)s)")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


# ---------------------------------------------------------------- migrate


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    add_db(parser)


def migrate_main(args: argparse.Namespace) -> int:
    async def go() -> int:
        try:
            applied = await migrate(dsns_of(args))
        except MigrationsMissing as e:
            print(f"tickfan migrate: {e}", file=sys.stderr)
            return 1
        for dsn, version in applied:
            print(f"applied {version} on {dsn}")
        print(f"ledger schema up to date on {len(dsns_of(args))} shard(s)")
        return 0
    return _run(go())


# ---------------------------------------------------------------- token


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", help="user id (the token's subject)")
    parser.add_argument("--ttl", type=float, default=24 * 3600,
                        help="validity in seconds (default %(default)s; servers refuse tokens valid for longer than "
                             "$TICKFAN_JWT_MAX_LIFETIME, 24 h by default)")


def token_main(args: argparse.Namespace) -> int:
    from tickfan.devkey import DevKeyError, use_dev_key
    from vocab.auth import mint_token
    try:
        use_dev_key(create=False)
        print(mint_token(args.user, ttl=args.ttl))
    except (ValueError, DevKeyError) as e:
        print(f"tickfan token: {e}", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------- deposit


def add_deposit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", help="user id")
    parser.add_argument("amount", help="dollars, an exact decimal (e.g. 100000 or 2500.50)")
    add_db(parser)


def deposit_main(args: argparse.Namespace) -> int:
    from order_api.model import ApiError

    async def go() -> int:
        try:
            amount = parse_money(args.amount)
        except ApiError as e:
            print(f"tickfan deposit: {e.message}", file=sys.stderr)
            return 2
        ledger = await Ledger.connect(dsns_of(args), max_size=2)
        try:
            account = await ledger.deposit(args.user, amount)
        except ApiError as e:
            print(f"tickfan deposit: {e.message}", file=sys.stderr)
            return 2
        finally:
            await ledger.close()
        print(f"deposited {money(amount)} to {args.user}: cash {money(account['cash'])}, "
              f"held {money(account['cash_held'])}")
        return 0
    return _run(go())


# ---------------------------------------------------------------- api


async def migrated(args: argparse.Namespace) -> bool:
    """The shards migrated (as the migrations' owner); False, said on stderr, when they are behind and this
    process may not migrate them (it then names `tickfan migrate`)."""
    try:
        await migrate(migration_dsns(args))
    except (MigrationsPending, MigrationsMissing) as e:
        print(f"tickfan: {e}", file=sys.stderr)
        return False
    return True


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="listen port (default %(default)s)")
    add_db(parser)
    add_migrate_db(parser)
    add_redis(parser)
    add_rules(parser)
    add_ledger_check(parser)
    parser.add_argument("--no-relay", action="store_true", help="do not run the outbox relay in this process")
    parser.add_argument("--drain-timeout", type=float, default=DRAIN_TIMEOUT, metavar="SECONDS",
                        help="on SIGTERM, stop accepting connections and give the requests in flight this long to "
                             "finish before exiting (default %(default)s)")
    add_tls_arguments(parser, "serve https://")
    add_http_limits(parser)
    parser.add_argument("--allowed-origin", action="append", default=None, metavar="ORIGIN", dest="allowed_origin",
                        help="a browser origin (scheme://host[:port]) whose pages may call this API (CORS); repeat "
                             "for several. Others are refused on POST/DELETE (403 origin_not_allowed); requests "
                             "without an Origin header (not browsers) are always accepted. Default: this API's own "
                             "origin(s), e.g. http://127.0.0.1:8000 and http://localhost:8000")


def add_http_limits(parser: argparse.ArgumentParser) -> None:
    """The order API's abuse limits (``HttpLimits``; README, Security: "Abuse limits on the HTTP API")."""
    group = parser.add_argument_group("order API limits")
    group.add_argument("--max-body", type=int, default=MAX_BODY, metavar="BYTES",
                       help="largest request body; a larger Content-Length is refused 413 before the body is read, "
                            "a chunked body is cut off there (default %(default)s)")
    group.add_argument("--rate-limit", type=int, default=RATE, metavar="N",
                       help="requests per user per --rate-window, refused ones included; past it 429 with "
                            "Retry-After; 0: no limit (default %(default)s, as Alpaca's API)")
    group.add_argument("--rate-window", type=float, default=WINDOW, metavar="SECONDS",
                       help="the rate limit's window (default %(default)s)")


def http_limits(args: argparse.Namespace) -> HttpLimits:
    return HttpLimits(max_body=args.max_body, rate=args.rate_limit, window=args.rate_window)


DEV_USERS = ("alice", "bob")  # the demo's seeded users (tickfan/trading.py): the only ones given dev tokens


def dev_tokens(verifier: Verifier) -> DevTokens | None:
    """``POST /v1/dev/token``'s configuration when ``verifier`` signs with this machine's development key (the
    demo's users only), else None: the route does not exist."""
    from tickfan.devkey import signing_with_dev_key

    key = signing_with_dev_key(verifier)
    return DevTokens(key, frozenset(DEV_USERS)) if key is not None else None


async def build_api(args: argparse.Namespace) -> Any:
    from starlette.routing import Route

    from order_api.api import create_app
    from order_api.quotes import RedisQuotes
    from tickfan.metrics_orders import api_metrics_endpoint
    from vocab.auth import default_verifier
    from vocab.origins import normalize_origin, own_origins

    rules = Rules(collar_bps=args.collar_bps, market_open=not args.market_closed,
                  max_quote_age=args.max_quote_age)
    ledger = await Ledger.connect(dsns_of(args), rules=rules, fee_bps=args.fee_bps, max_size=20)
    client = open_redis(args.trading_redis)
    limits = http_limits(args)
    try:
        origins = (tuple(normalize_origin(o) for o in args.allowed_origin) if args.allowed_origin
                   else own_origins(args.host, args.port, tls=tls_files(args).enabled))
    except ValueError as exc:
        raise SystemExit(f"tickfan api: --allowed-origin: {exc}") from None
    app = create_app(ledger, RedisQuotes(client), redis_client=client, relay=not args.no_relay, limits=limits,
                     ledger_check_interval=args.ledger_check_interval, dev_tokens=dev_tokens(default_verifier()),
                     allowed_origins=origins)
    app.router.routes.append(Route("/metrics", api_metrics_endpoint(app.state.order_service,
                                                                    app.state.origin_policy), methods=["GET"]))
    app.router.routes.extend(api_health(ledger, client).routes())
    return app


def api_health(ledger: Ledger, client: Any) -> Any:
    """/livez and /readyz of the order API: every ledger shard and the Redis of its streams answer."""
    from tickfan.health import CheckResult, Health, database_check

    health = Health()
    health.add("database", database_check(lambda: ledger.pools))

    async def redis_ping() -> CheckResult:
        await client.ping()
        return CheckResult(True, "PONG")
    health.add("redis", redis_ping)
    return health


def api_main(args: argparse.Namespace) -> int:
    import uvicorn

    from tickfan.httpserver import EmbeddedHTTPServer, uvicorn_tls

    _logging()
    tls = tls_files(args)

    async def go() -> int:
        if not await migrated(args):
            return 2
        app = await build_api(args)
        # httptools: the C HTTP parser (uvicorn's pure-Python h11 fallback costs a third of the ceiling)
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on",
                                access_log=False, http="httptools",
                                timeout_graceful_shutdown=max(1, round(args.drain_timeout)), **uvicorn_tls(tls))
        # SIGTERM (a rolling deploy): stop accepting, finish the requests in flight, exit 0; uvicorn's own handler
        # would re-raise the signal at the end and the process would die of it
        server = EmbeddedHTTPServer(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()  # the bind error, if any
            return 1
        scheme = "https" if tls.enabled else "http"
        print(f"order API on {scheme}://{args.host}:{args.port} (OpenAPI: /openapi.json)", flush=True)
        await serving
        return 0
    return _run(go())


# ---------------------------------------------------------------- execute


def add_execute_arguments(parser: argparse.ArgumentParser) -> None:
    add_db(parser)
    add_migrate_db(parser)
    add_redis(parser)
    parser.add_argument("--market-maker", type=hostport, default="127.0.0.1:9878", metavar="HOST:PORT",
                        help="FIX 4.4 market maker to route to (default %(default)s)")
    parser.add_argument("--stream-partitions", "--partitions", default=None, metavar="P,P",
                        help="execution stream partitions this worker consumes (default: all; --partitions is its "
                             "old spelling)")
    parser.add_argument("--name", default=None, help="consumer name in the stream group (default: host-random)")
    parser.add_argument("--quiet", action="store_true", help="no status line every 5 s")
    from tickfan.health import add_health_http

    add_health_http(parser)
    parser.add_argument("--drain-timeout", type=float, default=DRAIN_TIMEOUT, metavar="SECONDS",
                        help="on SIGTERM, read no new work and give the entry in hand and the execution reports "
                             "being applied this long to finish (and be acknowledged) before exiting; what is "
                             "left pending is claimed by another worker (default %(default)s)")
    parser.add_argument("--no-stop-watcher", action="store_true",
                        help="do not trigger this worker's users' stop orders here (default: they trigger on the "
                             "quote:{SYM} hashes in --trading-redis; the demo triggers them in the node, on its "
                             "own books)")
    parser.add_argument("--unknown-grace", type=float, default=UNKNOWN_GRACE, metavar="SECONDS",
                        help="how long an order already sent may stay 'unknown order' at a restarted market maker "
                             "(asked again meanwhile) before it is dead-lettered as unknown_at_counterparty; it is "
                             "never re-sent (default %(default)s)")
    parser.add_argument("--comp-id", default=None,
                        help="our FIX SenderCompID (default TF-{name}); under mutual TLS, the CN of --fix-cert")
    fix = parser.add_argument_group("FIX over TLS")
    fix.add_argument("--fix-ca", default=None, metavar="PEM",
                     help="connect to the market maker over TLS, verifying its certificate against this CA")
    fix.add_argument("--fix-cert", default=None, metavar="PEM",
                     help="mutual TLS: present this client certificate (its CN is our CompID)")
    fix.add_argument("--fix-key", default=None, metavar="PEM",
                     help="the client certificate's key, if not in --fix-cert")
    from tickfan.metrics_share import add_metrics_dir_arguments

    add_metrics_dir_arguments(parser)


def execute_main(args: argparse.Namespace) -> int:
    from order_api.execution import ExecutionWorker
    from order_api.outbox import STREAM_PARTITIONS
    from order_api.quotes import RedisQuotes
    from tickfan.health import CheckResult, start_health_http
    from tickfan.metrics_orders import ExecutionCollector, metrics_route
    from tickfan.metrics_share import writer_of
    from vocab.tls import client_context

    _logging()
    host, port = args.market_maker
    try:
        parts = ([parse_ascii_int(p.strip(), 4) for p in args.stream_partitions.split(",")]
                 if args.stream_partitions else None)
    except ValueError:
        parts = [-1]
    if parts is not None and any(not 0 <= p < STREAM_PARTITIONS for p in parts):
        print(f"tickfan execute: partitions are 0..{STREAM_PARTITIONS - 1}", file=sys.stderr)
        return 2

    if (args.fix_cert or args.fix_key) and not args.fix_ca:
        print("tickfan execute: --fix-cert needs --fix-ca (the CA of the market maker's certificate)", file=sys.stderr)
        return 2
    fix_tls = client_context(args.fix_ca, args.fix_cert, args.fix_key) if args.fix_ca else None

    async def go() -> int:
        if not await migrated(args):
            return 2
        ledger = await Ledger.connect(dsns_of(args), max_size=10)
        client = open_redis(args.trading_redis)
        worker = ExecutionWorker(ledger, client, fix_host=host, fix_port=port,
                                 name=args.name, partitions=parts, unknown_grace=args.unknown_grace,
                                 fix_tls=fix_tls, comp_id=args.comp_id, drain_timeout=args.drain_timeout,
                                 quotes=None if args.no_stop_watcher else RedisQuotes(client, max_age=0))
        health = api_health(ledger, client)
        health.add_sync("market_maker", lambda: CheckResult(worker.connected, f"FIX {host}:{port} " + (
            "up" if worker.connected else "down")))
        collectors: list[Any] = [ExecutionCollector(worker)]
        try:
            side = await start_health_http(args, "execute", health, [metrics_route(collectors)])
        except SystemExit as e:
            print(e, file=sys.stderr)
            await ledger.close()
            await client.aclose()
            return 1
        loop = asyncio.get_running_loop()

        def drain() -> None:
            health.draining = True
            worker.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, drain)
        print(f"execution worker {worker.name}: streams {', '.join(worker.streams)} -> FIX {host}:{port}"
              f"{' over TLS' if fix_tls else ''} as {worker.comp_id}", flush=True)

        async def status() -> None:
            while True:
                await asyncio.sleep(5)
                c = worker.counters
                print(f"sent {c['sent']} fills {c['fills']} dup {c['duplicate_fills']} cancels {c['cancels_sent']} "
                      f"reconciled {c['status_requests']} dead {c['dead_lettered']} (refused fills "
                      f"{c['fills_refused']}, unknown {c['unknown_dead_lettered']})", flush=True)

        writer = writer_of(args, "execute", collectors)
        if writer is not None:
            writer.start()
        ticker = asyncio.create_task(status() if not args.quiet else asyncio.sleep(0))
        try:
            await worker.run()
        finally:
            ticker.cancel()
            if writer is not None:
                await writer.close()
            if side is not None:
                await side.close()
            await ledger.close()
            await client.aclose()
        print(f"execution worker {worker.name}: stopped", flush=True)
        return 0
    return _run(go())


# ---------------------------------------------------------------- trade


def add_trade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", help="user id (a token is minted for it with $TICKFAN_JWT_SECRET, or the demo's "
                                     "development key when it is unset)")
    parser.add_argument("side", choices=["buy", "sell"])
    parser.add_argument("symbol")
    parser.add_argument("qty", nargs="?", default=None,
                        help="shares: a whole number or a decimal with at most 6 decimals (0.5); omit with --notional")
    parser.add_argument("--notional", default=None, metavar="DOLLARS",
                        help="buy (or sell: worth at the bid) this many dollars' worth at market instead of a qty "
                             "(e.g. --notional 10)")
    parser.add_argument("--limit", default=None, metavar="PRICE",
                        help="limit price (default: a market order); with --stop, a stop-limit order's limit")
    parser.add_argument("--stop", default=None, metavar="PRICE",
                        help="a stop order: rests until the ask (buy) rises or the bid (sell) falls to PRICE, then "
                             "goes at market (or at --limit: a stop-limit order)")
    parser.add_argument("--trail-percent", default=None, metavar="PERCENT",
                        help="a trailing stop: triggers once the bid (sell) falls PERCENT below its highest since "
                             "placement, or the ask (buy) rises PERCENT above its lowest (e.g. --trail-percent 1)")
    parser.add_argument("--trail-price", default=None, metavar="DOLLARS",
                        help="a trailing stop with a trail in dollars instead of a percentage")
    parser.add_argument("--tif", choices=["day", "gtc", "ioc", "fok", "opg", "cls"], default="day",
                        help="time in force (default %(default)s): gtc rests across sessions, fok fills whole or not "
                             "at all, opg/cls fill in the opening/closing cross")
    parser.add_argument("--extended-hours", action="store_true",
                        help="a limit day order that may also trade pre-market (04:00-09:30) and after hours "
                             "(16:00-20:00 New York time); needs --limit")
    add_order_client_arguments(parser, "the order to finish")


def trade_main(args: argparse.Namespace) -> int:
    return run_order_client("trade", args, trade)


def order_type(args: argparse.Namespace) -> str:
    """The order's ``type`` from the flags (the API refuses contradictions, e.g. --stop with --trail-price)."""
    if args.trail_percent is not None or args.trail_price is not None:
        return "trailing_stop"
    if args.stop is not None:
        return "stop_limit" if args.limit else "stop"
    return "limit" if args.limit else "market"


async def trade(args: argparse.Namespace) -> int:
    """Place an order through the API and print each update as it arrives on the WebSocket `orders` channel."""
    import httpx
    import websockets

    from tickfan_proto import stream_pb2
    from vocab.auth import mint_token

    token = mint_token(args.user)
    body: dict[str, Any] = {"symbol": args.symbol.upper(), "side": args.side,
                            "idempotency_key": args.key or uuid.uuid4().hex, "time_in_force": args.tif,
                            "type": order_type(args)}
    # sent as given (a decimal string): the API says what is wrong with it (qty_and_notional, missing_qty, ...)
    if args.qty is not None:
        body["qty"] = int(args.qty) if args.qty.isascii() and args.qty.isdigit() else args.qty
    if args.notional is not None:
        body["notional"] = args.notional
    if args.limit:
        body["limit_price"] = args.limit
    if args.extended_hours:
        body["extended_hours"] = True
    for field in ("stop", "trail_percent", "trail_price"):
        if getattr(args, field) is not None:
            body["stop_price" if field == "stop" else field] = getattr(args, field)
    headers = {"authorization": f"Bearer {token}"}
    started = time.monotonic()
    tls = client_tls(args, args.api, args.stream)
    # the token in the upgrade's Authorization header: never in a URL (`?token=` is deprecated)
    async with websockets.connect(args.stream, additional_headers=headers, max_size=2**22,
                                  ssl=tls if args.stream.startswith("wss://") else None) as ws:
        sub = stream_pb2.ClientMessage()
        sub.subscribe.channels.append("orders")
        await ws.send(sub.SerializeToString())
        async with httpx.AsyncClient(base_url=args.api, timeout=10, verify=tls or True) as http:
            posted = time.monotonic()
            r = await http.post("/v1/orders", json=body, headers=headers)
            acked = time.monotonic()
        if r.status_code >= 400:
            err = r.json().get("error", {})
            print(f"refused ({r.status_code} {err.get('code')}): {err.get('message')}", file=sys.stderr)
            return 1
        order = r.json()
        spend = f" (${order['notional']})" if order.get("notional") else ""
        if order.get("stop_price"):
            spend += f" stop {order['stop_price']}"
        print(f"{order['status']:<16} {order['side']} {order['qty']} {order['symbol']}{spend} "
              f"order {order['order_id']} (acknowledged in {1000 * (acked - posted):.1f} ms)", flush=True)
        if order["status"] in {s.value for s in TERMINAL}:
            return 0
        deadline = started + args.timeout
        seen = 1
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            except TimeoutError:
                break
            if isinstance(raw, str):
                continue
            msg = stream_pb2.ServerMessage.FromString(raw)
            kind = msg.WhichOneof("kind")
            if kind == "error":
                print(f"stream error {msg.error.code}: {msg.error.message}", file=sys.stderr)
                continue
            if kind != "order_update" or msg.order_update.order_id != order["order_id"]:
                continue
            u = msg.order_update
            if u.version <= seen:
                continue
            seen = u.version
            # the exact decimal quantities (fields 15-17); the whole-share ones for an older server
            last, done, of = (u.last_fill_qty_decimal or str(u.last_fill_qty), u.filled_qty_decimal or
                              str(u.filled_qty), u.qty_decimal or str(u.qty))
            fill = f" {last} @ {money(u.last_fill_price)}" if last not in ("0", "") else ""
            avg = f" (filled {done}/{of}, avg {money(u.avg_fill_price)})" if done not in ("0", "") else ""
            reason = f": {u.reason}" if u.reason else ""
            if u.trigger_price and u.status == "accepted":
                reason += f" triggered at {money(u.trigger_price)}"
            elif u.status == "pending_trigger" and u.stop_price:
                reason += f" stop now {money(u.stop_price)}"  # a trailing stop's, following the market
            print(f"{u.status:<16}{fill}{avg}{reason}  +{1000 * (time.monotonic() - posted):.1f} ms", flush=True)
            if Status(u.status) in TERMINAL:
                return 0 if u.status == "filled" else 1
    print(f"no final state within {args.timeout:g} s; see GET /v1/orders/{order['order_id']}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - `tickfan` is the entry point
    from tickfan.cli import main as tickfan_main
    return tickfan_main(argv)
