"""order_api: the trading write path (orders, ledger, execution). Empty until its issue lands.

FIX 4.4 side (dialect in FIX.md): ``fix`` codec and typed messages (pure), ``fix_session`` session state machine
(sans-I/O), ``fix_client`` asyncio initiator, ``marketmaker`` simulator (``tickfan market-maker``), ``resilience``
circuit breaker and backoff (pure).
"""
