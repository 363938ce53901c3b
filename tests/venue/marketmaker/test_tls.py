"""FIX over mutual TLS: the market maker's acceptor takes only client certificates of its CA, and binds the
CompID to the certificate (the Logon's SenderCompID must be the certificate's CN)."""

from __future__ import annotations

import pytest

from order_api.fix import NewOrder
from order_api.fix.client import FixClient, FixUnavailable
from tests.conftest import Certs
from tests.order_api.fix.conftest import Reports, done
from vocab.tls import client_context, server_context

from .conftest import market


def _mm_tls(certs: Certs) -> dict[str, object]:
    return {"tls": server_context(certs.server_cert, certs.server_key, client_ca=certs.ca)}


@pytest.mark.anyio
async def test_a_certificate_whose_cn_is_the_comp_id_logs_on_and_trades(certs: Certs) -> None:
    async with market(**_mm_tls(certs)) as (mm, _):
        reports = Reports()
        client = FixClient("127.0.0.1", mm.port, sender_comp_id="TICKFAN", on_report=reports,
                           tls=client_context(certs.ca, *certs.client("TICKFAN")))
        await client.connect()
        try:
            await client.send_new_order(NewOrder("t1", "AAPL", "buy", 10))
            await reports.until(done("t1"))
            assert set(mm.sessions) == {"TICKFAN"}
        finally:
            await client.close()


@pytest.mark.anyio
async def test_a_certificate_of_another_ca_is_refused_at_the_handshake(certs: Certs) -> None:
    async with market(**_mm_tls(certs)) as (mm, _):
        for context in (client_context(certs.ca, *certs.client("TICKFAN", stranger=True)),
                        client_context(certs.ca)):  # and no certificate at all
            client = FixClient("127.0.0.1", mm.port, sender_comp_id="TICKFAN", on_report=Reports(),
                               tls=context, connect_timeout=5)
            with pytest.raises(FixUnavailable):
                await client.connect()
        assert mm.counters["connections"] == 0  # no FIX session was ever started: the handshake failed
        assert not mm.sessions


@pytest.mark.anyio
async def test_a_valid_certificate_cannot_log_on_as_another_comp_id(certs: Certs) -> None:
    async with market(**_mm_tls(certs)) as (mm, _):
        client = FixClient("127.0.0.1", mm.port, sender_comp_id="OTHERFIRM", on_report=Reports(),
                           tls=client_context(certs.ca, *certs.client("TICKFAN")), connect_timeout=5)
        with pytest.raises(FixUnavailable, match="CompID"):
            await client.connect()
        assert mm.counters["connections"] == 1  # the handshake passed; the Logon was refused
        assert not mm.sessions


@pytest.mark.anyio
async def test_the_client_refuses_a_market_maker_it_cannot_verify(certs: Certs) -> None:
    async with market(**_mm_tls(certs)) as (mm, _):
        client = FixClient("127.0.0.1", mm.port, sender_comp_id="TICKFAN", on_report=Reports(),
                           tls=client_context(certs.stranger_ca, *certs.client("TICKFAN")), connect_timeout=5)
        with pytest.raises(FixUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await client.connect()
