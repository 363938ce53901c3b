"""Liveness and readiness for every process that serves HTTP: ``GET /livez`` and ``GET /readyz``.

``/livez`` answers 200 while the event loop runs: a process that cannot answer it is stuck and should be
restarted. ``/readyz`` runs the process's named checks (each bounded by ``timeout``, all at once) and answers
200 with ``{"status": "ready", "checks": {name: {"ok": true, "detail": ...}}}``, or 503 with
``"status": "not_ready"`` and ``"failing": [names]`` when any check fails, so a load balancer (a Kubernetes
readiness probe) sends traffic elsewhere. Once the process is draining (SIGTERM: a rolling deploy) ``/readyz``
answers 503 naming ``draining`` while in-flight work finishes.

The checks are small pure judges (``FeedReadiness``: feed state and feed silence over time, time passed in)
plus probes of the servers a process uses (``redis_check``, ``database_check``). ``/healthz`` stays what it was
in each process: a cheap "serving" answer.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tickfan.args import hostport
from tickfan.httpserver import SideServer


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str

    def record(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


Check = Callable[[], Awaitable[CheckResult]]

DEFAULT_CHECK_TIMEOUT = 2.0  # a probe slower than this counts as failed: a readiness probe must answer quickly


class Health:
    """A process's named readiness checks, and whether it is draining."""

    def __init__(self, timeout: float = DEFAULT_CHECK_TIMEOUT) -> None:
        self.timeout = timeout
        self.checks: dict[str, Check] = {}
        self.draining = False

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def add_sync(self, name: str, judge: Callable[[], CheckResult]) -> None:
        """A check that needs no I/O (a pure judge of in-process state)."""
        async def check() -> CheckResult:
            return judge()
        self.add(name, check)

    async def _run(self, check: Check) -> CheckResult:
        try:
            return await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return CheckResult(False, f"no answer within {self.timeout:g} s")
        except Exception as e:  # a probe that raises is a failed check, said, not a 500
            return CheckResult(False, f"{type(e).__name__}: {e}"[:300])

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of ``/readyz``."""
        names = list(self.checks)
        results = dict(zip(names, await asyncio.gather(*(self._run(self.checks[n]) for n in names)), strict=True))
        if self.draining:
            results["draining"] = CheckResult(False, "shutting down: finishing in-flight work")
        failing = [n for n, r in results.items() if not r.ok]
        body: dict[str, Any] = {"status": "not_ready" if failing else "ready",
                                "checks": {n: r.record() for n, r in results.items()}}
        if failing:
            body["failing"] = failing
        return (503 if failing else 200), body

    def routes(self) -> list[Route]:
        started = time.monotonic()

        async def livez(request: Request) -> Response:
            body = {"status": "alive", "uptime_seconds": round(time.monotonic() - started, 3)}
            return Response(orjson.dumps(body), media_type="application/json")

        async def readyz(request: Request) -> Response:
            status, body = await self.readiness()
            return Response(orjson.dumps(body), status_code=status, media_type="application/json")

        return [Route("/livez", livez, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


# Feed bounds: a gap may take this long to recover before the node stops being ready; no packet or heartbeat at
# all for this long means the books are stale (MoldUDP64 heartbeats at least once a second on a quiet feed).
DEFAULT_MAX_RECOVERING = 10.0
DEFAULT_MAX_SILENCE = 10.0


class FeedReadiness:
    """Judges a feed from what it shows over time: in sync, or recovering for at most ``max_recovering`` s; and
    heard from (a packet or heartbeat) within ``max_silence`` s. Pure: state, a packet count and the time in."""

    def __init__(self, *, max_recovering: float = DEFAULT_MAX_RECOVERING,
                 max_silence: float = DEFAULT_MAX_SILENCE, now: float = 0.0) -> None:
        self.max_recovering = max_recovering
        self.max_silence = max_silence
        self._recovering_since: float | None = None
        self._heard = 0
        self._heard_at = now  # silence is counted from the start: a feed that never speaks is not ready

    def observe_state(self, state: str, now: float) -> CheckResult:
        """``state``: in_sync, recovering or stale (``tickfan.roles.feed_state_of``)."""
        if state == "recovering":
            if self._recovering_since is None:
                self._recovering_since = now
            took = now - self._recovering_since
            if took > self.max_recovering:
                return CheckResult(False, f"recovering for {took:.1f} s (bound {self.max_recovering:g} s)")
            return CheckResult(True, f"recovering for {took:.1f} s (bound {self.max_recovering:g} s)")
        self._recovering_since = None
        if state == "in_sync":
            return CheckResult(True, "in_sync")
        return CheckResult(False, state)

    def observe_traffic(self, heard: int, now: float) -> CheckResult:
        """``heard``: the feed's packets plus heartbeats so far (any count that grows while the feed speaks)."""
        if heard != self._heard:
            self._heard, self._heard_at = heard, now
        quiet = now - self._heard_at
        if quiet > self.max_silence:
            return CheckResult(False, f"no packet or heartbeat for {quiet:.1f} s: books stale "
                                      f"(bound {self.max_silence:g} s)")
        return CheckResult(True, f"last heard {quiet:.1f} s ago")


def redis_check(url: str) -> tuple[Check, Callable[[], Awaitable[None]]]:
    """A PING of the Redis at ``url`` (a client of its own, opened on first use), and its closer."""
    from vocab.redisconn import open_redis

    client: Any = None

    async def check() -> CheckResult:
        nonlocal client
        if client is None:
            client = open_redis(url)
        await client.ping()
        return CheckResult(True, "PONG")

    async def close() -> None:
        if client is not None:
            await client.aclose()
    return check, close


def database_check(pools: Callable[[], Sequence[Any]]) -> Check:
    """``SELECT 1`` on every ledger shard's pool (asyncpg pools, looked up at each check)."""
    async def check() -> CheckResult:
        shards = list(pools())
        for pool in shards:
            await pool.fetchval("SELECT 1")
        return CheckResult(True, f"{len(shards)} shard(s) answer")
    return check


def add_health_http(parser: argparse.ArgumentParser) -> None:
    """``--http HOST:PORT``: the process's one small HTTP server (health here; /metrics is served on the same one,
    so the option is added once whichever of them adds it first)."""
    if any("--http" in action.option_strings for action in parser._actions):
        return
    parser.add_argument("--http", type=hostport, default=None, metavar="HOST:PORT",
                        help="serve GET /livez and /readyz (503 naming the failing check; 'draining' after "
                             "SIGTERM) on this address (default: none)")


async def start_health_http(args: argparse.Namespace, name: str, health: Health,
                            routes: Sequence[Route] = ()) -> SideServer | None:
    """The process's small HTTP server for /livez and /readyz (and ``routes``, e.g. /metrics), when ``--http``
    asks for one (else None)."""
    if getattr(args, "http", None) is None:
        return None
    side = SideServer(args.http[0], args.http[1], [*health.routes(), *routes])
    try:
        await side.start()
    except (OSError, RuntimeError, SystemExit) as e:
        raise SystemExit(f"tickfan {name}: cannot serve --http {args.http[0]}:{args.http[1]}: {e}") from None
    print(f"{name}: health on http://{args.http[0]}:{side.port}/livez, /readyz", flush=True)
    return side
