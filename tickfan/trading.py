"""The trading side of ``tickfan demo``: ledger migrations, seeded users, the order API mounted in the node beside
the snapshots, the outbox relay, a FIX market-maker simulator and an execution worker as child processes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from order_api.api import OrderService
from order_api.db import Ledger, migrate
from order_api.model import Rules
from order_api.quotes import BookQuotes
from order_api.stop_watcher import StopWatcher
from tickfan.args import hostport
from tickfan.procs import Children, tickfan_command
from tickfan.trading_cli import add_db, add_http_limits, add_ledger_check, add_redis, dev_tokens, dsns_of, http_limits
from vocab.auth import default_verifier
from vocab.redisconn import AnyRedis, open_redis

SEED_USERS = ("alice", "bob")  # also the only users POST /v1/dev/token mints for
SEED_CASH = 100_000 * 10_000  # $100,000 in 1/10,000 dollars


def add_trading_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-trading", action="store_true",
                        help="market data only: no ledger, order API, market maker or execution worker")
    add_db(parser)
    add_redis(parser, alias=False)  # the demo's --redis is the node's: where it publishes books
    parser.add_argument("--market-maker", type=hostport, default="127.0.0.1:9878", metavar="HOST:PORT",
                        help="where the demo's FIX market-maker simulator listens (default %(default)s)")
    add_ledger_check(parser)
    add_http_limits(parser)


def venue_flags(args: argparse.Namespace) -> list[str]:
    """The demo's market maker follows its simulator's day: the calendar with it (``--calendar``), and its
    session control (``tickfan venue``) on the port after the simulator's ``--control``."""
    flags = ["--calendar"] if getattr(args, "calendar", False) else []
    control = getattr(args, "control", None)
    if control is not None:
        flags += ["--http", f"{control[0]}:{control[1] + 1}"]
    return flags


PROBE_TIMEOUT = 3.0  # seconds a reachability probe of PostgreSQL or Redis may take before trading is called off


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


async def trading_unavailable(args: argparse.Namespace) -> str | None:
    """Why the demo's trading side cannot run here (PostgreSQL or Redis unreachable), as one line; None when it
    can. A shard database that does not exist yet is fine: ``migrate`` creates it."""
    import asyncpg
    import redis

    for dsn in dsns_of(args):
        try:
            conn = await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT)
        except asyncpg.InvalidCatalogNameError:
            continue
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            return f"PostgreSQL at {_without_password(dsn)} is unreachable ({type(e).__name__}: {e})"
        await conn.close()
    url = args.trading_redis
    client = open_redis(url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)
    try:
        await client.ping()
    except (OSError, TimeoutError, redis.RedisError) as e:
        return f"Redis at {_without_password(url)} is unreachable ({type(e).__name__}: {e})"
    finally:
        await client.aclose()
    return None


class TradingStack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ledger: Ledger | None = None
        self.redis: AnyRedis | None = None
        self.service: OrderService | None = None
        self.children = Children()  # the market maker and one execution worker
        self.seeded: list[str] = []
        self.stops: StopWatcher | None = None
        self._watching: asyncio.Task[None] | None = None

    async def prepare(self, books: Any) -> OrderService:
        """Before the node starts: migrate, seed, and build the order API to mount beside the snapshots."""
        dsns = dsns_of(self.args)
        await migrate(dsns)
        self.ledger = await Ledger.connect(dsns, rules=Rules(), max_size=10)
        for user in SEED_USERS:
            if await self.ledger.account(user) is None:
                await self.ledger.deposit(user, SEED_CASH)
                self.seeded.append(user)
        self.redis = open_redis(self.args.trading_redis)
        # stops trigger here, on the node's own books (the same quotes the API checks orders with); the worker's
        # own watcher reads Redis' quote: hashes, which the demo's node does not publish
        self.stops = StopWatcher(self.ledger, BookQuotes(books))
        self.service = OrderService(self.ledger, BookQuotes(books), redis_client=self.redis, relay=True,
                                    limits=http_limits(self.args),
                                    ledger_check_interval=self.args.ledger_check_interval,
                                    dev_tokens=dev_tokens(default_verifier()))
        return self.service

    async def start(self, http: tuple[str, int]) -> None:
        """After the node serves: the outbox relay, then the market maker and one execution worker."""
        assert self.service is not None
        await self.service.start()
        if self.stops is not None:
            self._watching = asyncio.create_task(self.stops.run(), name="stops")
        mm_host, mm_port = self.args.market_maker
        db = [a for d in (self.args.db or []) for a in ("--db", d)]
        self.children.start("market maker", tickfan_command(
            "market-maker", "--listen", f"{mm_host}:{mm_port}", "--quotes-url", f"http://{http[0]}:{http[1]}",
            "--status-interval", "0", *self._metrics("market-maker"), *venue_flags(self.args)), quiet=True)
        self.children.start("execution worker", tickfan_command(
            "execute", "--market-maker", f"{mm_host}:{mm_port}", "--trading-redis", self.args.trading_redis, *db,
            "--no-stop-watcher", "--quiet", *self._metrics("execute")), quiet=True)

    def _metrics(self, name: str) -> list[str]:
        """Where a child writes its metrics for the node's /metrics (the demo's directory), if anywhere."""
        directory = getattr(self.args, "metrics_dir", None)
        return ["--metrics-dir", directory, "--metrics-name", name] if directory else []

    def failed(self) -> str | None:
        return self.children.failed()

    async def close(self) -> None:
        self.children.stop_all()
        if self.stops is not None and self._watching is not None:
            self.stops.stop()
            with contextlib.suppress(Exception):
                await self._watching
        if self.service is not None:
            await self.service.close()
        if self.ledger is not None:
            await self.ledger.close()
        if self.redis is not None:
            await self.redis.aclose()
