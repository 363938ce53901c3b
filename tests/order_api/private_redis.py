"""Moved: ``PrivateRedis`` lives in tests/order_api/conftest.py (the ``private_redis`` fixture), ``free_port`` in
tests/conftest.py. Kept only for tests/fanout/test_orders_channel.py until its import is pointed there."""

from tests.conftest import free_port
from tests.order_api.conftest import PrivateRedis

__all__ = ["PrivateRedis", "free_port"]
