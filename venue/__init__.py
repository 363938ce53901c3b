"""venue: the outside world tickfan talks to, simulated so the whole system runs on one host.

Beside the data path, not on it: the exchange side of the market-data feed (the ITCH 5.0 simulator sending
MoldUDP64 over UDP, the rewinder answering re-requests, the GLIMPSE-style snapshot server, capture replay)
and the execution side of trading (a FIX 4.4 market maker that fills at the live book).

Speaks only the wire formats the real counterparts speak (ITCH, MoldUDP64, GLIMPSE, FIX), using the same
codecs as the consumers (``ingest``, ``order_api.fix``). No core package imports the venue
(import-linter checks it); tests, benchmarks and the ``tickfan`` command do.
"""
