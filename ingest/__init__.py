"""ingest: the exchange feed in, decoded messages out, in sequence.

Takes: Nasdaq TotalView-ITCH 5.0 messages in MoldUDP64 packets over UDP (unicast or multicast), from one or
two redundant lines (A/B), plus re-sent packets from a MoldUDP64 re-request server and, when books must
be rebuilt, a GLIMPSE-style snapshot over TCP.
Gives: decoded messages (``ingest.messages`` NamedTuples) in exact sequence order to a sink, normally
``normalize.Books.apply_batch``; with a partition map, only one partition's symbols.
Guarantees: byte-exact ITCH 5.0 and MoldUDP64 codecs; malformed packets, other sessions, duplicates,
backward sequences, truncated messages and unknown types are each counted and dropped, never a crash; a gap
is re-requested and filled in order, or, past the recovery timeout, skipped with the books flagged stale
until a snapshot rebuild. A sink that raises is counted (``sink_errors``) and logged; the feed goes on.
Nothing is silently wrong.

Modules: ``itch``, ``moldudp64``, ``glimpse``, ``capture`` (pure codecs); ``batch`` (numpy batch decoder, pure);
``session`` (the feed-session state machine, pure: states and moves as a table, ``FeedSessionError`` on an
illegal one), with ``packets`` (packet walking and decoding) and ``recovery`` (held packets, the re-request
window) beneath it; ``partition`` (symbol partitions, pure); ``handler`` (the asyncio adapter); ``record``
(a feed written to a capture file); ``udp`` (sender sockets). The exchange side (simulator, rewinder, snapshot
server, replay) is the venue's (``venue``); the clock is ``vocab.clock``.
Entry points: ``handler.open_feed(host, port, sink)`` for one line, ``handler.open_feeds(lines, sink, ...)``
for lines A/B with a rewinder and snapshots; ``session.FeedSession`` for the same logic without sockets;
``record.record(file, lines, stop=...)`` to capture a feed.
"""
