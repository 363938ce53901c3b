"""The stream's abuse limits (pure): token buckets, and who may connect.

Everything here is arithmetic on counters and a clock the caller reads; nothing touches a socket.

- ``TokenBucket``: ``burst`` at once, then ``rate`` a second. The connection's own budgets (fragments, symbols
  subscribed and unsubscribed) are buckets held by its ``ClientProtocol``.
- ``ConnectionLimits``: the server's admission decisions. At the upgrade, ``admit`` refuses a connection past
  the total cap (503), past the per-address cap or the per-address connection rate (429), past the node's own
  rate of new connections from everyone (503, when ``connection_rate`` is set); ``opened`` /
  ``closed`` count the admitted ones. ``user_joined`` / ``user_left`` count authenticated connections per user;
  past ``max_connections_per_user`` the newest is closed (1008). Refusals are counted by reason for metrics.

The node-wide rate is meant for the herd: the clients of a dead node come back from many addresses at once, each
within its per-address budget, and a node that takes more upgrades a second than it can set up spends itself on
connections whose clients time out and retry. Past it an upgrade is refused before any work with
``Retry-After``; loopback is not exempt (like the total cap, it protects the node, not its neighbours). Off by
default: on the loaded 2-core machine it did not yet hold a surviving node's latency (the refused clients'
retries wait in the accept queue like everyone's; benchmarks/RESULTS.md, "Reconnect storm").

Per-address limits key a client by its IP address, an IPv6 client by its /64 (the block one host or one
customer line usually owns: per full address, one machine would have 2^64 of them). Loopback is exempt unless
``limit_loopback`` is set: the load tools and tests open thousands of loopback connections on purpose.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

# refusal reasons, also the ``reason`` label of ``tickfan_connections_refused_total``
TOTAL = "total"              # the server's connection cap (503)
PER_IP = "per_ip"            # too many open connections from one address (429)
RATE = "connection_rate"     # new connections from one address too fast (429)
PER_USER = "per_user"        # too many authenticated connections of one user (close 1008)
NODE_RATE = "node_connection_rate"  # new connections from everyone too fast for this node (503)
REASONS = (TOTAL, PER_IP, RATE, PER_USER, NODE_RATE)
# the machine-readable ``code`` a refused client is told (the JSON body of the HTTP refusal, or the error frame)
CODES = {TOTAL: "server_full", PER_IP: "too_many_connections", RATE: "connection_rate_limited",
         PER_USER: "too_many_connections", NODE_RATE: "server_busy"}

SWEEP_FLOOR = 1024  # per-address buckets kept before idle ones are swept


class TokenBucket:
    """``burst`` tokens at once, refilled at ``rate`` a second; ``take`` spends them if there are enough."""

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last: float | None = None  # the clock of the last take: None until the first

    def _refill(self, now: float) -> float:
        if self.last is None:
            return self.tokens
        return min(self.burst, self.tokens + max(0.0, now - self.last) * self.rate)

    def take(self, now: float, n: float = 1.0) -> bool:
        """Spend ``n`` tokens at ``now`` (seconds, any monotonic clock); False, spending nothing, if short."""
        self.tokens = self._refill(now)
        self.last = now if self.last is None else max(self.last, now)
        if self.tokens < n:
            return False
        self.tokens -= n
        return True

    def full(self, now: float) -> bool:
        """Refilled to ``burst``: indistinguishable from a new bucket (so it can be forgotten)."""
        return self._refill(now) >= self.burst


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection is refused: a ``reason`` (one of ``REASONS``), the HTTP status, what to tell it, and
    when it may try again (seconds, for ``Retry-After``)."""

    reason: str
    status: int
    message: str
    retry_after: int = 1

    @property
    def code(self) -> str:
        return CODES[self.reason]


def address_key(host: str | None, limit_loopback: bool = False) -> str | None:
    """The key per-address limits count ``host`` under: the IPv4 address, an IPv6 address's /64; None when
    exempt (loopback without ``limit_loopback``, or no address known)."""
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return host  # not an IP address (a Unix socket path?): counted as given
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4
    if ip.is_loopback and not limit_loopback:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class ConnectionLimits:
    """Admission of WebSocket connections: in total, per address, per address per second, per user."""

    def __init__(self, *, max_connections: int, max_connections_per_ip: int, connection_rate_per_ip: float,
                 connection_burst_per_ip: int, max_connections_per_user: int, limit_loopback: bool = False,
                 connection_rate: float = 0.0) -> None:
        """``connection_rate``: new connections a second from everyone, one second's worth at once (0: no limit)."""
        self.max_connections = max_connections
        self.max_connections_per_ip = max_connections_per_ip
        self.connection_rate_per_ip = connection_rate_per_ip
        self.connection_burst_per_ip = connection_burst_per_ip
        self.max_connections_per_user = max_connections_per_user
        self.limit_loopback = limit_loopback
        self.open = 0
        self.per_ip: dict[str, int] = {}
        self.per_user: dict[str, int] = {}
        self.refused: dict[str, int] = dict.fromkeys(REASONS, 0)
        self._buckets: dict[str, TokenBucket] = {}
        self._sweep_at = SWEEP_FLOOR
        self.connection_rate = connection_rate
        self._node_bucket = TokenBucket(connection_rate, max(1.0, connection_rate)) if connection_rate > 0 else None

    def key(self, host: str | None) -> str | None:
        return address_key(host, self.limit_loopback)

    def admit(self, host: str | None, now: float) -> Refusal | None:
        """An upgrade from ``host`` at ``now``: None to accept it (then ``opened``), or why not (counted).

        Every attempt spends a token of its address' connection rate, refused ones too: a client hammering a
        full server does not earn a burst for later."""
        key = self.key(host)
        rate_ok = True
        if key is not None:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._sweep_at:
                    self._sweep(now)
                bucket = self._buckets[key] = TokenBucket(self.connection_rate_per_ip, self.connection_burst_per_ip)
            rate_ok = bucket.take(now)
        if self.open >= self.max_connections:
            return self._refuse(TOTAL, 503, f"server full: {self.max_connections} connections; retry later")
        if key is not None:
            if self.per_ip.get(key, 0) >= self.max_connections_per_ip:
                return self._refuse(PER_IP, 429, f"too many connections from {key} "
                                                  f"(at most {self.max_connections_per_ip})")
            if not rate_ok:
                return self._refuse(RATE, 429, f"too many new connections from {key} (at most "
                                                f"{self.connection_rate_per_ip:g}/s, burst "
                                                f"{self.connection_burst_per_ip}); retry later",
                                    retry_after=max(1, math.ceil(1 / self.connection_rate_per_ip)))
        # last: an address refused above spends none of the node's budget, so one flooding address cannot
        # take everyone else's turn
        if self._node_bucket is not None and not self._node_bucket.take(now):
            return self._refuse(NODE_RATE, 503, f"too many new connections to this node (at most "
                                                 f"{self.connection_rate:g}/s); retry later, or another node")
        return None

    def opened(self, host: str | None) -> None:
        """An admitted connection is open (upgraded)."""
        self.open += 1
        key = self.key(host)
        if key is not None:
            self.per_ip[key] = self.per_ip.get(key, 0) + 1

    def closed(self, host: str | None) -> None:
        """An opened connection is gone."""
        self.open = max(0, self.open - 1)
        key = self.key(host)
        if key is not None:
            left = self.per_ip.get(key, 0) - 1
            if left > 0:
                self.per_ip[key] = left
            else:
                self.per_ip.pop(key, None)

    def user_joined(self, user: str) -> Refusal | None:
        """A connection authenticated as ``user``: None (counted; ``user_left`` when it goes), or why it must
        close (not counted)."""
        n = self.per_user.get(user, 0)
        if n >= self.max_connections_per_user:
            return self._refuse(PER_USER, 429, f"too many connections for this user "
                                               f"(at most {self.max_connections_per_user})")
        self.per_user[user] = n + 1
        return None

    def user_left(self, user: str) -> None:
        left = self.per_user.get(user, 0) - 1
        if left > 0:
            self.per_user[user] = left
        else:
            self.per_user.pop(user, None)

    @property
    def tracked_addresses(self) -> int:
        """Per-address rate buckets held (bounded: refilled ones of closed addresses are swept)."""
        return len(self._buckets)

    def _refuse(self, reason: str, status: int, message: str, retry_after: int = 1) -> Refusal:
        self.refused[reason] += 1
        return Refusal(reason, status, message, retry_after)

    def _sweep(self, now: float) -> None:
        """Forget the buckets that are full again (a new one would be the same): the table stays about the size
        of the addresses active within ``burst / rate`` seconds, whatever the number ever seen."""
        self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}
        self._sweep_at = max(SWEEP_FLOOR, 2 * len(self._buckets))
