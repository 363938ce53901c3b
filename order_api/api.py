"""The order API (ASGI, Starlette): thin HTTP around the ledger. Every refusal is a 4xx with a code.

Routes: POST/GET /v1/orders, GET/PATCH/DELETE /v1/orders/{id} (PATCH replaces: order_api/replacing.py),
GET /v1/portfolio, GET /v1/account, GET /v1/activities,
GET /v1/ledger, GET /v1/clock, GET /v1/calendar (order_api/market_clock.py), GET /openapi.json,
GET /healthz, POST /v1/ws-ticket, POST /v1/logout-everywhere, and POST /v1/dev/token only with the development key
(order_api/devtoken.py). Users authenticate with ``Authorization: Bearer
<JWT>`` (vocab/auth.py: signature, issuer, audience, expiry, lifetime), and the token must not be revoked
(order_api/sessions.py). Bodies are read with a cap and every user's requests are rate limited
(order_api/limits.py). No request gets a traceback: anything unforeseen is logged and answered 500 ``internal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import asyncpg
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from order_api import replacing, settlement
from order_api.account import DEFAULT_PAGE, MAX_PAGE, account_json, decode_cursor
from order_api.answers import answered, error_response, internal_error, json_response
from order_api.audit import DEFAULT_INTERVAL, AuditCollector, LedgerAudit
from order_api.db import Ledger
from order_api.devtoken import DevTokens
from order_api.hot_path import PlaceOrderRoute, placement
from order_api.limits import BodyCounters, HttpLimits, RateLimiter, read_body
from order_api.market_clock import NowNs, calendar_body, clock_body
from order_api.model import TERMINAL, ApiError, OrderRequest, Status, money, pre_trade, quantity
from order_api.openapi import openapi_document
from order_api.order_stats import PlacementStats
from order_api.outbox import OutboxRelay
from order_api.quotes import QuoteSource
from order_api.sessions import Sessions
from order_api.views import order_json
from vocab.auth import TICKET_TTL, AuthError, Claims, KeyConfigError, Verifier, bearer, default_verifier
from vocab.digits import parse_ascii_int
from vocab.origins import OriginGuard, OriginPolicy
from vocab.quantities import QTY_SCALE
from vocab.redisconn import AnyRedis

STATUSES = frozenset(s.value for s in Status)


@dataclass
class Services:
    ledger: Ledger
    quotes: QuoteSource
    relay: OutboxRelay | None = None
    settlement: settlement.SettlementJob | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    limits: HttpLimits = field(default_factory=HttpLimits)
    bodies: BodyCounters = field(default_factory=BodyCounters)
    now_ns: NowNs = time.time_ns  # the wall clock the market clock reads (injectable: tests drive it)


Handler = Callable[[Request, str], Awaitable[Response]]


def authenticated(handler: Handler, service: OrderService) -> Callable[[Request], Awaitable[Response]]:
    """Resolve the bearer token to a user, and turn every refusal into its 4xx/503 with a code."""

    async def endpoint(request: Request) -> Response:
        request.state.services = service.services
        try:
            claims = service.verifier.claims(bearer(request.headers.get("authorization")))
        except AuthError as e:
            return error_response(401, e.code, str(e))
        request.state.claims = claims
        if service.limiter is None:
            return await answer(request, claims)
        verdict = service.limiter.hit(claims.user)  # every request counts, refused ones too
        if verdict.allowed:
            response = await answer(request, claims)
        else:
            response = error_response(429, "rate_limited", f"at most {verdict.limit} requests per "
                                      f"{service.limiter.window:g} s per user; retry after Retry-After seconds")
        response.headers.update(verdict.headers(time.time()))
        return response

    async def answer(request: Request, claims: Claims) -> Response:
        async def run() -> Response:
            await service.sessions.check(claims)
            return await handler(request, claims.user)
        return await answered(lambda: f"{request.method} {request.url.path}", service, run)

    return endpoint


def services(request: Request) -> Services:
    s: Services = request.state.services
    return s


def order_id_of(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["order_id"])
    except ValueError as e:
        raise ApiError(404, "order_not_found", "no such order") from e


async def place_order(request: Request, user: str) -> Response:
    """Starlette's route for POST /v1/orders (mounted in the demo's node); ``create_app`` answers it in front of
    Starlette (order_api/hot_path.py), with the same :func:`placement`."""
    s = services(request)
    status, body = await placement(s, user, await read_body(request, s.limits.max_body, s.bodies))
    return json_response(body, status)


async def get_order(request: Request, user: str) -> Response:
    order = await services(request).ledger.get_order(user, order_id_of(request))
    if order is None:
        raise ApiError(404, "order_not_found", "no such order")
    return json_response(order_json(order))


async def list_orders(request: Request, user: str) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_parameter", f"status must be one of {', '.join(sorted(STATUSES))}")
    limit = _int_param(request, "limit", 100, 1, 1000)
    rows = await services(request).ledger.orders(user, limit=limit, status=status)
    return json_response({"orders": [order_json(r) for r in rows]})


async def cancel_order(request: Request, user: str) -> Response:
    order = await services(request).ledger.cancel(user, order_id_of(request))
    return json_response(order_json(order), 200 if order["status"] == "cancelled" else 202)


async def replace_order(request: Request, user: str) -> Response:
    """202 with the order, ``replaced_by`` naming its replacement to be: the market maker's answer decides (the
    WebSocket shows the old order ``replaced`` and the replacement, or ``replaced_by`` cleared if too late).
    200 for the same idempotency key again."""
    s = services(request)
    terms = replacing.parse_replace(await read_body(request, s.limits.max_body, s.bodies),
                                    request.headers.get("idempotency-key"))
    order_id = order_id_of(request)
    current = await s.ledger.get_order(user, order_id)
    if current is None:
        raise ApiError(404, "order_not_found", "no such order")
    replacing.replaceable(current)
    if terms.limit_price is not None and Status(current["status"]) not in TERMINAL:
        # validated like a new order: the market open, the symbol trading, a marketable limit within its collar
        quote = await s.quotes.quote(current["symbol"])
        pre_trade(OrderRequest(current["symbol"], current["side"], terms.qty or int(current["qty"]), "limit",
                               terms.limit_price, terms.tif or current["tif"], terms.idempotency_key), quote,
                  s.ledger.rules)
    order, created = await replacing.request(s.ledger, user, order_id, terms, current)
    return json_response(order_json(order), 202 if created else 200)


async def portfolio(request: Request, user: str) -> Response:
    """Valued at the bid. Prices that are not current (the feed says stale, or none vouched for within the
    rules' ``max_quote_age``: the market-data node or Redis down) still value the holdings, and say so:
    ``price_stale`` and ``price_age`` per holding, ``prices_stale`` for the whole answer."""
    s = services(request)
    account = await s.ledger.account(user)
    positions = await s.ledger.positions(user)
    quotes = await s.quotes.quotes(p["symbol"] for p in positions)
    max_age = s.ledger.rules.max_quote_age
    holdings, total_value, any_stale = [], 0, False
    for p in positions:
        q = quotes.get(p["symbol"])
        shares = int(p["qty"]) + int(p["qty_held"])
        price = (q.bid or q.last) if q is not None else 0
        value = shares * price // QTY_SCALE  # a fraction of a unit rounded down: a position is valued, not traded
        total_value += value
        stale = q is None or not price or q.is_stale(max_age)
        any_stale = any_stale or (stale and shares > 0)
        holdings.append({
            "symbol": p["symbol"], "qty": quantity(shares), "qty_available": quantity(int(p["qty"])),
            "qty_held": quantity(int(p["qty_held"])),
            "cost_basis": money(int(p["cost"])), "price": money(price) if price else None,
            "market_value": money(value) if price else None,
            "unrealized_pnl": money(value - int(p["cost"])) if price else None,
            "price_age": round(q.age, 3) if q is not None and price else None, "price_stale": stale,
        })
    cash = int(account["cash"]) if account else 0
    held = int(account["cash_held"]) if account else 0
    view = await settlement.account_view(s.ledger, user)
    return json_response({
        "user_id": user, "cash": money(cash), "cash_held": money(held), "buying_power": money(cash),
        "settled_cash": money(view.settled_cash), "unsettled_cash": money(view.unsettled_cash),
        "withdrawable": money(view.withdrawable),
        "holdings": holdings, "market_value": money(total_value), "equity": money(cash + held + total_value),
        "prices_stale": any_stale,
    })


async def account(request: Request, user: str) -> Response:
    """Cash as a broker shows it (settled and unsettled apart, buying power, withdrawable) and the positions:
    the same numbers as the positions channel's AccountUpdate, at its ``version``."""
    view = await settlement.account_view(services(request).ledger, user)
    return json_response({"user_id": user, **account_json(view)})


async def activities(request: Request, user: str) -> Response:
    """The user's fills, deposits, withdrawals, fees and settlements, newest first, ``page_size`` at a time;
    ``page_token`` (the previous page's ``next_page_token``) continues below it."""
    page_size = _int_param(request, "page_size", DEFAULT_PAGE, 1, MAX_PAGE)
    token = request.query_params.get("page_token")
    before = decode_cursor(token) if token else None
    items, next_token = await settlement.activities(services(request).ledger, user, before=before,
                                                    page_size=page_size)
    return json_response({"activities": items, "next_page_token": next_token})


async def journal(request: Request, user: str) -> Response:
    limit = _int_param(request, "limit", 100, 1, 1000)
    before_text = request.query_params.get("before")
    before = _int_param(request, "before", 0, 1, 2**62) if before_text is not None else None
    rows = await services(request).ledger.journal(user, limit=limit, before=before)
    return json_response({"entries": [{
        "id": int(r["id"]), "txn_id": str(r["txn_id"]), "kind": r["kind"], "account": r["account"],
        "asset": r["asset"], "amount": money(int(r["amount"])) if r["asset"] == "USD" else int(r["amount"]),
        "order_id": str(r["order_id"]) if r["order_id"] else None, "exec_id": r["exec_id"],
        "created_at": r["created_at"].isoformat()} for r in rows]})


async def market_clock(request: Request, user: str) -> Response:
    return json_response(clock_body(services(request).now_ns()))


async def market_calendar(request: Request, user: str) -> Response:
    q = request.query_params
    return json_response(calendar_body(q.get("start"), q.get("end"), services(request).now_ns()))


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = parse_ascii_int(text)  # int() would take "١٠", " 10" and "1_0"
    except ValueError as e:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number in ASCII digits") from e
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}")
    return value


def ws_ticket_of(service: OrderService) -> Handler:
    async def ws_ticket(request: Request, user: str) -> Response:
        """A single-use ticket for the WebSocket upgrade (``?ticket=``), valid 30 s: tokens stay out of URLs."""
        claims: Claims = request.state.claims
        try:
            ticket = service.verifier.mint_ticket(claims)
        except KeyConfigError as e:
            raise ApiError(501, "tickets_unavailable", str(e)) from None
        return json_response({"ticket": ticket, "expires_in": int(TICKET_TTL)})
    return ws_ticket


def logout_everywhere_of(service: OrderService) -> Handler:
    async def logout_everywhere(request: Request, user: str) -> Response:
        """Refuse every token of the user issued until now, here at once, on the nodes' WebSockets as soon as
        the outbox relay publishes it."""
        generation, before = await service.sessions.logout_everywhere(user)
        return json_response({"user_id": user, "generation": generation, "revoked_before": before})
    return logout_everywhere


def dev_token_of(service: OrderService, dev: DevTokens) -> Callable[[Request], Awaitable[Response]]:
    """``POST /v1/dev/token`` (order_api/devtoken.py): no bearer token, so rate limited per client address."""

    async def dev_token(request: Request) -> Response:
        async def run() -> Response:
            s = service.services
            user = dev.user_of(await read_body(request, s.limits.max_body, s.bodies))
            if await s.ledger.account(user) is None:
                raise ApiError(404, "unknown_user", f"{user} has no account in the ledger")
            token = dev.mint(user, issuer=service.verifier.issuer, audience=service.verifier.audience)
            return json_response({"token": token, "token_type": "Bearer", "user_id": user,
                                  "expires_in": int(dev.ttl)})

        if service.limiter is None:
            return await answered(lambda: f"{request.method} {request.url.path}", service, run)
        client = request.client.host if request.client is not None else "unknown"
        verdict = service.limiter.hit(f"dev-token@{client}")  # never a user id: USER_ID has no '@'
        if verdict.allowed:
            response = await answered(lambda: f"{request.method} {request.url.path}", service, run)
        else:
            response = error_response(429, "rate_limited", f"at most {verdict.limit} requests per "
                                      f"{service.limiter.window:g} s per address; retry after Retry-After seconds")
        response.headers.update(verdict.headers(time.time()))
        return response

    return dev_token


async def openapi(request: Request) -> Response:
    return json_response(openapi_document())


def healthz_of(service: OrderService) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(request: Request) -> Response:
        try:
            for pool in service.services.ledger.pools:
                await pool.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            return error_response(503, "ledger_unavailable", str(e))
        return json_response({"status": "ok"})
    return healthz


class OrderService:
    """The order API's state and routes, mountable beside other routes (the node serves them next to the
    snapshots on one port in the demo) or as an app of its own (:func:`create_app`)."""

    def __init__(self, ledger: Ledger, quotes: QuoteSource, *, jwt_key: str | None = None,
                 verifier: Verifier | None = None, redis_client: AnyRedis | None = None, relay: bool = True,
                 revocation_cache: float = 1.0, limits: HttpLimits | None = None,
                 clock: Callable[[], float] = time.monotonic, ledger_check_interval: float = DEFAULT_INTERVAL,
                 dev_tokens: DevTokens | None = None) -> None:
        """``verifier``: the token configuration (the process's by default; ``jwt_key``: an HS256 secret
        instead). ``revocation_cache``: seconds a user's revocation state is reused by this process.
        ``ledger_check_interval``: seconds between runs of the ledger's invariants (0: never). ``dev_tokens``:
        serve ``POST /v1/dev/token`` (only when signing with the development key; None: no such route)."""
        limits = limits or HttpLimits()
        self.services = Services(ledger, quotes, limits=limits)
        self.verifier = verifier or (Verifier(secret=jwt_key) if jwt_key else default_verifier())
        self.sessions = Sessions(ledger, cache_ttl=revocation_cache)
        self.redis_client = redis_client if relay else None
        # per user, in this process (README: "Abuse limits on the HTTP API" says why not shared through Redis)
        self.limiter = RateLimiter(limits.rate, limits.window, clock) if limits.rate > 0 else None
        self.outcomes_unknown = 0  # 503 outcome_unknown answers
        self.internal_errors = 0  # 500 internal answers
        self.audit = LedgerAudit(ledger, interval=ledger_check_interval) if ledger_check_interval > 0 else None
        self.dev_tokens = dev_tokens
        self.placements = PlacementStats()  # POST /v1/orders answers by outcome, and their time (for /metrics)

    def collectors(self) -> list[Collector]:
        """What this service adds to a ``/metrics`` endpoint beside its counters: the scheduled ledger check."""
        return [AuditCollector(self.audit)] if self.audit is not None else []

    def counters(self) -> dict[str, int]:
        """The abuse and fault counters, for /metrics (tickfan/metrics.py reads them at scrape time)."""
        held = getattr(self.services.quotes, "served_held", 0)
        return {"rate_limited": self.limiter.limited if self.limiter is not None else 0,
                "body_too_large": self.services.bodies.too_large, "outcome_unknown": self.outcomes_unknown,
                "internal_error": self.internal_errors, "quote_served_held": held}

    def routes(self) -> list[Route]:
        def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            return authenticated(handler, self)

        return [
            Route("/v1/orders", self.placements.measure(bind(place_order)), methods=["POST"]),
            Route("/v1/orders", bind(list_orders), methods=["GET"]),
            Route("/v1/orders/{order_id}", bind(get_order), methods=["GET"]),
            Route("/v1/orders/{order_id}", bind(cancel_order), methods=["DELETE"]),
            Route("/v1/orders/{order_id}", bind(replace_order), methods=["PATCH"]),
            Route("/v1/portfolio", bind(portfolio), methods=["GET"]),
            Route("/v1/account", bind(account), methods=["GET"]),
            Route("/v1/activities", bind(activities), methods=["GET"]),
            Route("/v1/ledger", bind(journal), methods=["GET"]),
            Route("/v1/clock", bind(market_clock), methods=["GET"]),
            Route("/v1/calendar", bind(market_calendar), methods=["GET"]),
            Route("/v1/ws-ticket", bind(ws_ticket_of(self)), methods=["POST"]),
            Route("/v1/logout-everywhere", bind(logout_everywhere_of(self)), methods=["POST"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *([Route("/v1/dev/token", dev_token_of(self, self.dev_tokens), methods=["POST"])]
              if self.dev_tokens is not None else []),
        ]

    async def start(self) -> None:
        """Run the outbox relay for every shard (if this service has Redis), and the scheduled ledger check."""
        svc = self.services
        if self.redis_client is not None:
            svc.relay = OutboxRelay(svc.ledger, self.redis_client)
            svc.tasks.append(asyncio.create_task(svc.relay.run()))
        if self.audit is not None:
            svc.tasks.append(asyncio.create_task(self.audit.run(), name="ledger check"))
        # sales settle T+1: every API process runs the job; the account lock settles each sale once
        svc.settlement = settlement.SettlementJob(svc.ledger)
        svc.tasks.append(asyncio.create_task(svc.settlement.run(), name="settlement"))

    async def close(self) -> None:
        svc = self.services
        if svc.relay is not None:
            svc.relay.stop()
        if self.audit is not None:
            self.audit.stop()
        if svc.settlement is not None:
            svc.settlement.stop()
        for t in svc.tasks:
            t.cancel()
        for t in svc.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        svc.tasks.clear()


def create_app(ledger: Ledger, quotes: QuoteSource, *, jwt_key: str | None = None, verifier: Verifier | None = None,
               redis_client: AnyRedis | None = None, relay: bool = True, revocation_cache: float = 1.0,
               limits: HttpLimits | None = None, clock: Callable[[], float] = time.monotonic,
               ledger_check_interval: float = DEFAULT_INTERVAL, dev_tokens: DevTokens | None = None,
               allowed_origins: Iterable[str] | None = None) -> Starlette:
    """The order API as an ASGI app of its own; with ``redis_client`` and ``relay`` it runs the outbox relay,
    and the scheduled ledger check unless ``ledger_check_interval`` is 0. ``allowed_origins``: the browser
    origins granted CORS, others refused on POST/DELETE (``vocab.origins``; None: no browser check)."""
    service = OrderService(ledger, quotes, jwt_key=jwt_key, verifier=verifier, redis_client=redis_client,
                           relay=relay, revocation_cache=revocation_cache, limits=limits, clock=clock,
                           ledger_check_interval=ledger_check_interval, dev_tokens=dev_tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.close()

    app = Starlette(routes=[*service.routes(), Route("/healthz", healthz_of(service), methods=["GET"])],
                    lifespan=lifespan, exception_handlers={Exception: internal_error})
    app.add_middleware(PlaceOrderRoute, service=service)  # inside the origin guard: browsers' rules still apply
    app.state.order_service = service  # for the command's /metrics
    app.state.origin_policy = None
    if allowed_origins is not None:
        app.state.origin_policy = policy = OriginPolicy.of(allowed_origins)
        app.add_middleware(OriginGuard, policy=policy)
    return app
