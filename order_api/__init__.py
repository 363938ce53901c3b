"""order_api: the trading write path (orders, ledger, execution). Empty until its issue lands."""
