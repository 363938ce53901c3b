"""Who may log on to the market maker, over real TCP: configured CompIDs only, one session per CompID.

Why: the acceptor took any SenderCompID, and a second logon with the same CompID evicted the first session (an
execution worker could be knocked off by anyone who could reach the port)."""

from __future__ import annotations

import pytest

from order_api.fix import NewOrder
from order_api.fix.client import FixClient, FixUnavailable
from tests.order_api.fix.conftest import Reports, done, session
from venue.marketmaker import comp_id_accepted

from .conftest import market

pytestmark = pytest.mark.anyio


async def test_a_comp_id_not_configured_is_refused_with_a_logout_saying_why() -> None:
    async with market(accept_comp_ids=("TF-*", "DESK1")) as (mm, _):
        stranger = FixClient("127.0.0.1", mm.port, sender_comp_id="EVIL", on_report=Reports())
        with pytest.raises(FixUnavailable, match="'EVIL' is not accepted"):
            await stranger.connect()
        assert mm.counters["logons_refused"] == 1 and "EVIL" not in mm.sessions
        for ok in ("DESK1", "TF-worker-7"):
            async with session(mm, sender_comp_id=ok) as (client, _):
                assert client.connected and ok in mm.sessions


async def test_a_second_logon_for_a_logged_on_comp_id_is_refused_and_the_first_keeps_trading() -> None:
    async with market() as (mm, _), session(mm, sender_comp_id="TF-w1") as (first, reports):
        intruder = FixClient("127.0.0.1", mm.port, sender_comp_id="TF-w1", on_report=Reports())
        with pytest.raises(FixUnavailable, match="already logged on"):
            await intruder.connect()
        assert mm.counters["logons_refused"] == 1 and mm.counters["drops"] == 0
        # the first session is untouched: still logged on, still trading
        assert first.connected and mm.sessions["TF-w1"].session.active
        await first.send_new_order(NewOrder("still-here", "AAPL", "buy", 10))
        await reports.until(done("still-here"))
        # once it logs out, the CompID is free again
        await first.close()
        async with session(mm, sender_comp_id="TF-w1") as (again, _):
            assert again.connected


def test_accepted_comp_ids_are_exact_names_or_prefixes() -> None:
    assert comp_id_accepted("TF-a", ("TF-*",)) and comp_id_accepted("MM", ("MM",))
    assert not comp_id_accepted("MMX", ("MM",)) and not comp_id_accepted("XTF-a", ("TF-*",))
    assert not comp_id_accepted("", ())
