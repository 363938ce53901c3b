"""venue: the outside world tickfan talks to, simulated so the whole system runs on one host.

Beside the data path, not on it: the exchange side of the market-data feed (the ITCH 5.0 simulator sending
MoldUDP64 over UDP, the rewinder answering re-requests, the GLIMPSE-style snapshot server, capture replay)
and the execution side of trading (a FIX 4.4 market maker that fills at the live book).

Speaks only the wire formats the real counterparts speak (ITCH, MoldUDP64, GLIMPSE, FIX), using the same
codecs as the consumers (``ingest``, ``order_api.fix``). No core package imports the venue
(import-linter checks it); tests, benchmarks and the ``tickfan`` command do. The exchange side reads no command
line: ``tickfan simulate`` and ``tickfan replay`` are the app layer's (``tickfan.simulate``,
``tickfan.capture_cli``).

Modules:
- ``simulator``: ``ExchangeSimulator``, the pure generator of a trading day's ITCH 5.0 messages (and its
  current state as a snapshot);
- ``feed``: ``serve``, the asyncio sender pacing the simulated stream onto UDP in MoldUDP64 packets (lines
  A/B, heartbeats, End of Session, an optional ``Burst``), with the two services below beside it;
- ``rewinder``: ``Rewinder``, the MoldUDP64 re-request server over a bounded history (pure ``answer``);
- ``glimpse_server``: the GLIMPSE-style snapshot server over TCP;
- ``replay``: a capture (or a Nasdaq ITCH 5.0 file) played back onto UDP;
- ``marketmaker``: the FIX 4.4 market maker.
"""
