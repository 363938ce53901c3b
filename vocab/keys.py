"""Redis names: the contract between processes that meet only through Redis.

Market data (written by the node that owns the books, read by fan-out nodes elsewhere and by the order API's
pre-trade checks) and trading (the outbox relay writes, execution workers and fan-out nodes read). A name is
spelled here once; every reader and writer imports it.
"""

from __future__ import annotations

from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

# ---- market data
SYMBOLS = "tickfan:symbols"              # hash: ticker -> "locate:partition"
QUOTES_CHANNEL = "tickfan:quotes:{}"     # sharded pub/sub, one per symbol partition (named with its slot tag,
#                                          ``partition_tag``): encoded ServerMessages of quotes, status, trades
QUOTE_PARTITIONS = 16                    # symbol partitions of the quotes channels
QUOTES_LIVE = "tickfan:quotes:live"      # string: wall-clock ns of the publisher's last round with changes; the
#                                          `quote:` hashes are current as of then (a frozen feed lets it age)
BARS_CHANNEL = "tickfan:bars:{}"         # sharded pub/sub, one per partition (its slot tag): BarBatch (closed bars
#                                          and open-bar updates, conflated per round)
BARS_KEY = "tickfan:bars:{}:{}"          # sorted set per symbol and interval ("1s", "1m"): encoded Bar messages
#                                          scored by start time, the newest closed bars and the open one


@cache
def partition_tag(partition: int) -> str:
    """The hash tag of a partition's channels: ``{P.N}``, N the smallest that puts partition P's slot in the
    middle of its 1/16 of the 16,384 slots of a Redis Cluster. A cluster splits the slots into equal ranges per
    master, so the 16 partitions spread evenly (3 masters: 5/6/5 partitions; the plain names gave 9/4/3); a
    partition's quotes and bars channels share the tag, so they live on one shard. A single server ignores it."""
    width = REDIS_CLUSTER_HASH_SLOTS // QUOTE_PARTITIONS
    low = (partition % QUOTE_PARTITIONS) * width + width // 4
    for n in range(1_000_000):  # a slot window of 512 holds the answer within a few hundred tries
        tag = f"{partition}.{n}"
        if low <= key_slot(tag.encode()) < low + width // 2:
            return "{" + tag + "}"
    raise AssertionError(f"no hash tag for partition {partition}")  # pragma: no cover (CRC16 spreads)


DEPTH_CHANNEL = "tickfan:depth:{}"       # sharded pub/sub, one per symbol partition: the depth of the symbols whose
#                                          depth moved in a round, as one ServerMessage{DepthBatch}; a channel of its
#                                          own (not the quotes'), so only edges whose clients watch depth take it;
#                                          no order with the quotes is needed (each Depth carries its version)


def depth_channel(partition: int) -> str:
    return DEPTH_CHANNEL.format(partition_tag(partition))


def depth_key(symbol: str) -> str:
    """The string holding a symbol's newest depth, an encoded ServerMessage{DepthBatch} of its one Depth (an edge
    seeds a newly watched symbol from it)."""
    return f"depth:{symbol}"


def bars_channel(partition: int) -> str:
    return BARS_CHANNEL.format(partition_tag(partition))


def bars_key(symbol: str, interval: str) -> str:
    """A symbol's bar history of one interval ("1s" or "1m") on Redis."""
    return BARS_KEY.format(symbol, interval)

FEED_EPOCH = "tickfan:feed:epoch"        # string: the publisher's feed session (its trade_seq numbering), an int
FEED_STATE = "tickfan:feed:state"        # string: the publisher's feed state ("in_sync", "recovering", "stale")
TRADES_HISTORY = "tickfan:trades:{}:{}"  # stream per feed epoch and symbol: its last prints (resume), entry id
#                                          "{trade_seq}-0", fields t (an encoded Trade) and at (publish ns)


def trades_key(epoch: int, symbol: str) -> str:
    """The stream of a symbol's recent prints in one feed session (any fan-out node replays from it)."""
    return TRADES_HISTORY.format(epoch, symbol)


MARKET_STATUS = "tickfan:market"        # hash: the market-wide status (``normalize.status.MarketStatusView``)
MARKET_CHANNEL = "tickfan:quotes:market"  # sharded pub/sub: an encoded StatusBatch with the market, per change
#                                          (beside the quotes channels: the same readers, the same ACL pattern)


def status_key(symbol: str) -> str:
    """The hash holding a symbol's trading status (``normalize.status.SymbolStatusView``)."""
    return f"status:{symbol}"


def quote_key(symbol: str) -> str:
    """The hash holding a symbol's current top of book (exact decimal strings)."""
    return f"quote:{symbol}"


def quotes_channel(partition: int) -> str:
    """Partition ``partition``'s channel, e.g. ``tickfan:quotes:{3.41}`` (its slot tag, ``partition_tag``)."""
    return QUOTES_CHANNEL.format(partition_tag(partition))


# ---- trading
# On a Redis Cluster each of these is one key or channel on one hash slot; none must share a slot with another
# (no command or transaction touches two), so none carries a hash tag. The four execution streams hash to slots
# 7376, 3313, 15506 and 11443: the three masters of an even three-way split each carry one or two (tested in
# tests/order_api/test_cluster_failover.py); a worker reads them slot by slot (``order_api.execution``).
ORDER_CHANNEL_PREFIX = "tickfan:orders:"  # sharded pub/sub (SPUBLISH), one per user: encoded ServerMessage order
#                                           updates; on a cluster served by the master of the channel's slot only
EXEC_STREAM = "tickfan:exec:{}"           # stream, one per partition of users: work for execution workers
EXEC_PARTITIONS = 4
EXEC_DEAD = "tickfan:exec:dead"           # stream: work and reports that could not be applied


def order_channel(user_id: str) -> str:
    """The sharded pub/sub channel carrying one user's order updates to the fan-out nodes."""
    return ORDER_CHANNEL_PREFIX + user_id


ACCOUNT_KEY_PREFIX = "tickfan:account:"  # string, one per user: the newest encoded ServerMessage{AccountUpdate}
#                                           (the outbox relay SETs it before publishing the update on the user's
#                                           order channel; a fan-out node sends it as the positions snapshot)


def account_key(user_id: str) -> str:
    """The string holding a user's newest account update (the ``positions`` channel's snapshot)."""
    return ACCOUNT_KEY_PREFIX + user_id


def exec_stream(partition: int) -> str:
    return EXEC_STREAM.format(partition)
