"""vocab: the shared vocabulary of tickfan, the bottom layer every other package may import.

Imports no other package of the project (import-linter checks it). Holds the shapes and rules that must
have exactly one definition, because every hop speaks them:

- ``clock``: the one clock ITCH stamps and latency measurements share;
- ``prices``: fixed-point prices (4 implied decimals): one parser, one formatter;
- ``framing``: length-prefixed framing (2-byte big-endian length, then the message), as ITCH files,
  MoldUDP64 message blocks and GLIMPSE snapshots use it;
- ``partition``: the CRC-32 partition function (symbols, users, streams: stable across processes);
- ``keys``: Redis key, channel and stream names, the contract between processes that meet through Redis;
- ``auth``: bearer tokens (HS256, RS256/ES256 JWTs) verified against the configured keys, WebSocket tickets;
- ``digits``: integers in ASCII digits only (``parse_ascii_int``), for every parse of user or counterparty text;
- ``addr``: ``HOST:PORT`` parsing (raises ``ValueError``; a CLI turns it into a usage error);
- ``limits``: process limits a server needs (open files);
- ``histogram``: a cumulative histogram (what Prometheus' ``rate()`` and ``histogram_quantile()`` need);
- ``quantities``: fixed-point quantities (millionths of a share): one parser, one formatter;
- ``calendar``: the exchange's sessions, holidays and early closes from its published rules, and the clock;
- ``origins``, ``tls``: browser origins allowed, TLS contexts from certificate files;
- ``redisconn``: one way to open Redis (a single server or a Redis Cluster, by the URL).

Pure, except ``limits`` (a system call), ``clock`` (reads the wall clock) and ``redisconn`` (opens clients).
"""
