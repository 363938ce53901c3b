"""Fan-out: books in, Protobuf frames out to subscribed WebSocket clients.

Takes in: any ``normalize.source.BookSource`` (in-process books, the shared-memory or Redis replica: its
per-symbol ``seq`` / ``depth_seq`` versions and its ring of trade prints), client messages
(``tickfan.v1.ClientMessage``: subscribe, unsubscribe, ping) over WebSocket at ``/v1/stream``, bearer tokens
on the upgrade, and users' order updates published on Redis (``vocab.keys.order_channel``). Settings: one
``FanoutConfig``.

Gives out: ``tickfan.v1.ServerMessage`` frames, binary protobuf, or canonical proto3 JSON text with
``?format=json``: ``Subscribed`` acks, ``Snapshot``, conflated ``QuoteBatch``/``DepthBatch`` updates,
``TradeBatch`` prints, ``StatusBatch`` (the ``status`` channel: a snapshot, then every status event),
``OrderUpdate`` (the ``orders`` channel), ``AccountUpdate`` (the ``positions`` channel: a snapshot read from
Redis, then every version once, in order), ``Heartbeat``, ``Pong`` and ``Error``
(codes ``bad_message``, ``unknown_symbol``, ``unknown_channel``, ``too_many_symbols``, ``too_large``,
``rate_limited``, ``unauthenticated``, ``invalid_token``, ``token_expired``, ``orders_unavailable``).

Guarantees:
- a newly subscribed symbol's snapshot reaches the client before any update of it;
- conflation is newest-wins: a client that cannot be written to is given, when it drains, the newest state
  of each symbol it missed, never a backlog; a symbol's ``seq`` never goes backwards on a connection;
- each changed symbol is encoded once per flush, whatever the number of subscribers; a client's frame is
  a concatenation of shared bytes (byte-identical to protobuf's own serialization);
- per-client state is bounded by its subscription (at most ``max_symbols`` per channel, one owed entry
  per subscribed symbol), and messages are bounded by ``max_message_bytes``;
- a bad or slow client cannot hurt others: bad input is answered with an error frame and counted, send
  failures are caught and counted per client, and writes never wait on a client;
- a connection gets only its own user's order updates (the user its token proved at the upgrade), all of
  them in publish order after its ``Subscribed`` ack, or is disconnected; an anonymous one gets an error
  frame for ``orders`` and its prices as before.

Modules: ``config`` (``FanoutConfig``, every setting), ``encode`` (entries and frames, pure), ``hub``
(subscriptions, conflation, flush at a time passed in; pure; its ``Subscriber`` and ``FlushResult`` in
``subscriber``), ``protocol`` (one connection's state machine and
the orders-channel gate; pure), ``messages`` (its stateless messages), ``positions`` (the positions channel's
order, pure), ``orders`` (the Redis relay of order updates), ``server`` (the picows asyncio
adapter: moves bytes; its flushes in ``flushing``, a connection's resume in ``resuming``, the upgrade's protocol
in ``upgrade``).
"""
