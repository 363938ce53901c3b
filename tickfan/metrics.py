"""Prometheus metrics of a node, read from the hops' own counters at scrape time.

Nothing is counted twice and nothing is counted on the hot path for Prometheus' sake: the feed session, the
books and the fan-out already keep counters; this collector turns them into metric families when
``/metrics`` is scraped. The rules (``promtool check metrics`` holds them; README, Operations: "Logs and
metrics"): counters and histograms are cumulative since the process started, in base units (seconds, bytes),
one name one type; a counter's name gets ``_total`` on the wire.

Renamed (promtool objected): ``tickfan_e2e_latency_ms`` (a ring of recent samples, in ms) is
``tickfan_e2e_latency_seconds`` (every sample since start); the counter ``tickfan_connections`` (a name the
gauge of open connections also had) is ``tickfan_connections_accepted_total``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from fanout.config import LIMITS
from fanout.protocol import FRAGMENT_RATE, TOO_LARGE, TOO_MANY_FRAGMENTS
from tickfan.metrics_share import CONTENT_TYPE, histogram_family
from vocab.origins import OriginPolicy

if TYPE_CHECKING:
    from fanout.server import FanoutServer
    from ingest.handler import FeedHandler
    from normalize.source import BookSource
    from order_api.api import OrderService

class Measured(Protocol):
    """What the collector reads: a node's edge (its books and fan-out) and the feed behind the books, if any."""

    @property
    def feed(self) -> FeedHandler | None: ...

    @property
    def books(self) -> BookSource: ...

    @property
    def fanout(self) -> FanoutServer | None: ...


class NodeCollector(Collector):
    """A node's hops: its feed and books, and (unless it is an ingest worker) its fan-out."""

    def __init__(self, node: Measured) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        yield from self._books()
        if self.node.fanout is not None:
            yield from self._fanout(self.node.fanout)

    def _books(self) -> Iterator[Metric]:
        node = self.node
        if node.feed is not None:
            feed = CounterMetricFamily("tickfan_feed_events", "Feed session events by kind", labels=["kind"])
            for kind, value in node.feed.session.counters.items():
                feed.add_metric([kind], value)
            yield feed
            yield GaugeMetricFamily("tickfan_feed_stale", "1 while the books cannot be vouched for",
                                    value=1 if node.feed.session.needs_rebuild else 0)
        books = CounterMetricFamily("tickfan_book_events", "Book events by kind", labels=["kind"])
        for kind, value in node.books.counters.items():
            books.add_metric([kind], value)
        yield books
        yield GaugeMetricFamily("tickfan_symbols", "Symbols in the stock directory", value=len(node.books.locate_of))

    def _fanout(self, fanout: FanoutServer) -> Iterator[Metric]:
        stats = fanout.stats
        yield GaugeMetricFamily("tickfan_connections", "Open WebSocket connections", value=stats.clients)
        subs = GaugeMetricFamily("tickfan_subscriptions", "Subscribed (client, symbol) pairs", labels=["channel"])
        hub = fanout.hub
        subs.add_metric(["quotes"], int(hub.quotes.count.sum()))
        subs.add_metric(["depth"], int(hub.depth.count.sum()))
        subs.add_metric(["trades"], int(hub.trade_count.sum()))
        subs.add_metric(["status"], int(hub.status.count.sum()))
        for channel, width in (("bars:1s", 1_000_000_000), ("bars:1m", 60_000_000_000)):
            subs.add_metric([channel], sum(len(w) for (k, _), w in hub.bars.watchers.items() if k == width))
        yield subs
        for name, help_text, value in (
            ("tickfan_connections_accepted", "WebSocket connections accepted", stats.connections_total),
            ("tickfan_frames_sent", "WebSocket frames written", stats.frames_sent),
            ("tickfan_bytes_sent", "WebSocket payload bytes written", stats.bytes_sent),
            ("tickfan_updates_sent", "Symbol updates delivered inside frames", stats.updates_sent),
            ("tickfan_conflated_updates", "Updates skipped for clients that could not take them (newest sent later)",
             hub.stats.conflated_skips),
            ("tickfan_slow_consumer_disconnects", "Clients cut off for not reading", stats.slow_disconnects),
            ("tickfan_errors_sent", "Error frames sent to clients", stats.errors_sent),
            ("tickfan_rate_limited", "Client messages refused by the rate limit", stats.rate_limited),
            ("tickfan_flushes", "Conflation flushes", hub.stats.flushes),
            ("tickfan_status_events", "Trading status events taken from the books for the status channel",
             hub.status.stats.events),
            ("tickfan_status_resyncs", "Status snapshots sent to clients that could not take every event",
             hub.status.stats.resyncs),
            ("tickfan_token_expired_closes", "Connections closed (4001) when their token expired unrefreshed",
             stats.token_expired_closes),
            ("tickfan_token_revoked_closes", "Connections closed (4003) when their user logged out everywhere",
             stats.token_revoked_closes),
            ("tickfan_ws_tickets_redeemed", "WebSocket upgrades authenticated by a single-use ticket",
             stats.tickets_redeemed),
            ("tickfan_ws_tickets_refused", "WebSocket tickets refused (invalid, expired or used before)",
             stats.tickets_refused),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        yield from self._tiers(fanout)
        yield from self._resume(fanout)
        yield from self._limits(fanout)
        yield from self._orders(fanout)
        yield from self._bars(fanout)
        yield histogram_family("tickfan_e2e_latency_seconds", "Exchange timestamp to frame written, per symbol "
                               "update encoded, seconds", hub.latency)

    def _tiers(self, fanout: FanoutServer) -> Iterator[Metric]:
        """Conflation tiers (``fanout.tiers``): clients per tier now, and the moves the node made."""
        tiers = fanout.tiers
        clients = GaugeMetricFamily("tickfan_tier_clients", "Connections per conflation tier (0: every flush, "
                                    "then slower flush periods)", labels=["tier"])
        for tier, count in enumerate(tiers.per_tier):
            clients.add_metric([str(tier)], count)
        yield clients
        moves = CounterMetricFamily("tickfan_tier_moves", "Clients moved to a slower conflation tier for falling "
                                    "behind (down) or back to a faster one once keeping up (up)", labels=["direction"])
        moves.add_metric(["down"], tiers.moves_down)
        moves.add_metric(["up"], tiers.moves_up)
        yield moves

    def _resume(self, fanout: FanoutServer) -> Iterator[Metric]:
        """Resume: verdicts by kind (complete, partial, not_recoverable), prints replayed, and the history kept."""
        verdicts = CounterMetricFamily("tickfan_resume_verdicts", "Recovered verdicts sent to resuming clients",
                                       labels=["verdict"])
        for verdict in ("complete", "partial", "not_recoverable"):
            verdicts.add_metric([verdict], fanout.stats.resumes.get(verdict, 0))
        yield verdicts
        yield CounterMetricFamily("tickfan_resume_prints_replayed", "Trade prints replayed to resuming clients",
                                  value=fanout.stats.prints_replayed)
        history = fanout.hub.history
        yield GaugeMetricFamily("tickfan_resume_history_prints", "Trade prints this node holds for replay",
                                value=min(history.total, history.capacity) if history is not None else 0)

    def _bars(self, fanout: FanoutServer) -> Iterator[Metric]:
        """The bar builder's counters (prints, breaks by outcome, ...), the closed bars it keeps, and the channel."""
        source = getattr(self.node, "bars", None)
        if source is None:
            return
        events = CounterMetricFamily("tickfan_bar_events", "Bar builder and feed events by kind", labels=["kind"])
        for kind, value in source.counters.items():
            events.add_metric([kind], value)
        yield events
        yield GaugeMetricFamily("tickfan_bars_kept", "Closed bars held in the history, both intervals",
                                value=source.bars_kept)
        stats = fanout.hub.bars.stats
        sent = CounterMetricFamily("tickfan_bar_channel", "The bars channels' work by kind", labels=["kind"])
        for kind, value in vars(stats).items():
            sent.add_metric([kind], value)
        yield sent

    def _limits(self, fanout: FanoutServer) -> Iterator[Metric]:
        """The stream's abuse limits: what they refused and closed, and their settings."""
        limits, stats, hub = fanout.limits, fanout.stats, fanout.hub.stats
        refused = CounterMetricFamily(
            "tickfan_connections_refused", "WebSocket connections refused by a limit: total and node_connection_rate "
                                           "(HTTP 503), per_ip and connection_rate (HTTP 429), per_user (closed "
                                           "with 1008)", labels=["reason"])
        for reason, value in limits.refused.items():
            refused.add_metric([reason], value)
        yield refused
        closes = CounterMetricFamily(
            "tickfan_limit_closes", "Connections closed for what they sent: too_large and too_many_fragments (1009), "
                                    "fragment_rate (1008)", labels=["reason"])
        for reason in (TOO_LARGE, TOO_MANY_FRAGMENTS, FRAGMENT_RATE):
            closes.add_metric([reason], stats.limit_closes.get(reason, 0))
        yield closes
        for name, help_text, value in (
            ("tickfan_symbol_rate_limited", "Subscribe/unsubscribe requests refused by the per-connection symbol "
                                            "budget", stats.symbol_rate_limited),
            ("tickfan_snapshot_symbols", "Symbols put in subscribe snapshots", hub.snapshot_symbols),
            ("tickfan_snapshot_symbols_encoded", "Snapshot symbols that had to be encoded (the others were served "
                                                 "from the bytes of their current version)", hub.snapshot_encoded),
        ):
            yield CounterMetricFamily(name, help_text, value=value)
        yield GaugeMetricFamily("tickfan_limited_addresses", "Client addresses whose connection rate is tracked",
                                value=limits.tracked_addresses)
        setting = GaugeMetricFamily("tickfan_stream_limit", "The stream's configured limits (FanoutConfig)",
                                    labels=["name"])
        for name in LIMITS:
            setting.add_metric([name], float(getattr(fanout.config, name)))
        yield setting

    def _orders(self, server: FanoutServer) -> Iterator[Metric]:
        """The WebSocket orders channel (only on a node started with ``--orders-redis``)."""
        relay = server.orders
        if relay is None:
            return
        stats, fanout = relay.stats, server.stats
        yield GaugeMetricFamily("tickfan_orders_subscribers", "Connections subscribed to the orders channel",
                                value=relay.subscribers)
        yield GaugeMetricFamily("tickfan_orders_users", "Users whose Redis order channel this node subscribes to",
                                value=relay.users)
        yield GaugeMetricFamily("tickfan_orders_redis_up", "1 while the orders channel's Redis connection is up",
                                value=1 if stats.up else 0)
        for name, help_text, value in (
            ("tickfan_order_updates_received", "Order updates read from Redis", stats.received),
            ("tickfan_order_updates_delivered", "Order updates handed to connections (one per connection)",
             stats.delivered),
            ("tickfan_order_updates_bad", "Payloads on an order channel that were not an order update (dropped)",
             stats.bad_payloads),
            ("tickfan_orders_redis_outages", "Times the orders channel lost (or could not reach) Redis",
             stats.outages),
            ("tickfan_orders_queue_disconnects", "Clients cut off with too many order updates unread",
             fanout.order_queue_disconnects),
            ("tickfan_token_revocations_received", "Log-out-everywhere messages read from Redis", stats.revocations),
            ("tickfan_account_updates_delivered", "Account updates (the positions channel, snapshots included) "
             "handed to connections (one per connection)", stats.account_updates),
            ("tickfan_positions_snapshot_errors", "Positions snapshots Redis could not give (the client was told)",
             stats.snapshot_errors),
        ):
            yield CounterMetricFamily(name, help_text, value=value)


class OriginCollector(Collector):
    """Browser origin checks (``vocab.origins``) per surface (the stream, the HTTP APIs): requests/upgrades
    without an Origin (not browsers), with an allowed one, refused (403), and foreign reads answered without a
    CORS grant."""

    def __init__(self, surfaces: Mapping[str, OriginPolicy]) -> None:
        self.surfaces = surfaces

    def collect(self) -> Iterator[Metric]:
        checks = CounterMetricFamily("tickfan_origin_checks", "Browser Origin checks by surface and verdict: "
                                     "absent (no Origin: not a browser), granted, refused (403 "
                                     "origin_not_allowed), foreign_read (a GET answered without CORS)",
                                     labels=["surface", "verdict"])
        for surface, policy in self.surfaces.items():
            for verdict, value in policy.counters().items():
                checks.add_metric([surface, verdict], value)
        yield checks


class OrderApiCollector(Collector):
    """The order API's abuse limits and faults (``tickfan api``): requests refused by kind, and the rest."""

    HELP = {"rate_limited": "Requests refused 429 rate_limited (a user past their budget)",
            "body_too_large": "Request bodies refused 413 (by Content-Length, or cut at the cap while read)",
            "outcome_unknown": "Commits whose answer was lost (503 outcome_unknown)",
            "internal_error": "Unforeseen errors answered 500 internal (each logged with its traceback)",
            "quote_served_held": "Quotes served from the process's memory while Redis was down"}

    def __init__(self, service: OrderService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        for name, value in self.service.counters().items():
            yield CounterMetricFamily(f"tickfan_api_{name}", self.HELP.get(name, name), value=value)


def metrics_endpoint(node: Measured, extra: Sequence[Collector] = ()) -> Callable[[Request], Awaitable[Response]]:
    """The node's /metrics: its own families and ``extra``'s (the order API's, other processes' through
    ``tickfan.metrics_share.SharedMetrics``), one family per name."""
    from tickfan.metrics_share import exposition

    collectors = [NodeCollector(node), *extra]

    async def metrics(request: Request) -> Response:
        return Response(exposition(collectors), media_type=CONTENT_TYPE)

    return metrics
