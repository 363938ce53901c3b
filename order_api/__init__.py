"""order_api: the trading write path, from an HTTP order to a fill in the ledger.

Takes: orders over HTTP (JWT-authenticated JSON), current quotes (Redis ``quote:{SYM}`` hashes or a fixed
table, through ``quotes``), and execution reports from market makers over FIX 4.4.
Gives: order state and portfolios over HTTP (prices with their age and a stale flag); execution work on Redis
Streams ``tickfan:exec:{partition}``; order updates SPUBLISHed on each owner's sharded channel
(``vocab.keys.order_channel``) for the fan-out's ``orders`` channel, with the owner's account updates (the
``positions`` channel; the newest SET at ``vocab.keys.account_key``); the account and activities over HTTP;
FIX NewOrderSingle / cancel / status requests to the market maker. Redis is one server or a Redis Cluster
(``vocab.redisconn.open_redis``).
Guarantees: consistency over availability. If PostgreSQL is down an order is refused, never half-written;
money moves only inside one transaction on the user's shard, every movement is a balanced journal entry
(``Ledger.check()`` proves the invariants, for everyone or for given users); one idempotency key is one order;
each execution (ExecID) is applied once; work is published at least once from the outbox and acknowledged
only when done. Imports nothing of ingest, snapshots, fanout, the venue or the app layer (import-linter).

Modules. Pure cores: ``model`` (requests, validation, order lifecycle, holds), ``ledger`` (journal-entry
builders, ``balanced``), ``resilience`` (circuit breaker, backoff), ``views`` (an order as JSON or an update
frame), ``account`` (cash-account numbers, settlement dates, the AccountUpdate frame, activities), ``openapi``
(with ``openapi_account``), and the pure parts of ``fix`` (``codec``, ``messages``, ``session``; the dialect is in
FIX.md). Adapters: ``api`` (Starlette), ``limits`` (its body cap and per-user request rate), ``db`` (asyncpg
ledger; ``migrations/``), ``batching`` (placements per shard in batches), ``outbox`` (relay to Redis),
``settlement`` (the account view, activities and the T+1 settlement job), ``quotes``, ``execution`` (workers:
streams -> FIX -> ledger), ``fix.connection`` (the one asyncio FIX connection, both roles) and ``fix.client``
(the initiator).
The market-maker simulator on the other end is ``venue.marketmaker``; the commands are ``tickfan/``.
"""
