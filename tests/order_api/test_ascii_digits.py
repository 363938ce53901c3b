"""The order API reads numbers in ASCII digits only: ``int()`` and ``\\d`` would take Arabic-Indic or full-width
digits, spaces and underscores (a limit price of "١٩٠" was placed at $190)."""

from __future__ import annotations

import orjson
import pytest

from .conftest import ScopedLedger
from .test_api import api, auth, order
from .test_ledger import DOLLAR

pytestmark = pytest.mark.anyio


async def test_non_ascii_digits_are_refused_with_a_code(ledger: ScopedLedger) -> None:
    u = ledger.user()
    await ledger.deposit(u, 10_000 * DOLLAR)
    async with api(ledger) as c:
        for text in ("١٩٠", "１９０", "190\n"):
            r = await c.post("/v1/orders", content=orjson.dumps(order(type="limit", limit_price=text)),
                             headers=auth(u))
            assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_limit_price"), text
        for text in ("١٠", " 10", "1_0", "²"):
            r = await c.get("/v1/orders", params={"limit": text}, headers=auth(u))
            assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_parameter"), text
        assert (await c.get("/v1/orders", params={"limit": "10"}, headers=auth(u))).status_code == 200
    assert await ledger.pool_for(u).fetchval("SELECT count(*) FROM orders WHERE user_id = $1", u) == 0
