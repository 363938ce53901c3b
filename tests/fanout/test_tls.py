"""The fan-out server over wss:// (certificates made by trustme): real `websockets` clients over loopback."""

from __future__ import annotations

import ssl

import pytest
import websockets

from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import Certs
from vocab.tls import TlsFiles, client_context

from .conftest import bump, config, serve, subscribe, until


def test_wss_serves_quotes_to_a_client_that_trusts_the_ca(certs: Certs) -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        assert url.startswith("wss://")
        async with websockets.connect(url, ssl=client_context(certs.ca)) as ws:
            await ws.send(subscribe("AAPL"))
            assert (await until(ws, "snapshot")).snapshot.quotes[0].bid_price == 1000000
            bump(books, 1, 1000500)
            assert (await until(ws, "quotes")).quotes.quotes[0].bid_price == 1000500

    serve(scenario, config(tls=TlsFiles(certs.server_cert, certs.server_key)))


def test_wss_is_refused_by_a_client_that_does_not_trust_the_ca(certs: Certs) -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        with pytest.raises(ssl.SSLCertVerificationError):
            async with websockets.connect(url, ssl=client_context(certs.stranger_ca)):
                pass
        assert server.stats.connections_total == 0

    serve(scenario, config(tls=TlsFiles(certs.server_cert, certs.server_key)))


def test_mutual_tls_refuses_a_client_without_a_certificate_of_the_ca(certs: Certs) -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        for context in (client_context(certs.ca), client_context(certs.ca, *certs.client("edge", stranger=True))):
            # TLS 1.3: the client's handshake ends before the server has checked its certificate, so the
            # refusal shows as the connection failing during the WebSocket upgrade
            with pytest.raises((ssl.SSLError, OSError, websockets.InvalidHandshake, EOFError)):
                async with websockets.connect(url, ssl=context, open_timeout=10):
                    pass
        assert server.stats.connections_total == 0
        async with websockets.connect(url, ssl=client_context(certs.ca, *certs.client("edge"))) as ws:
            await ws.send(subscribe("AAPL"))
            await until(ws, "snapshot")
        assert server.stats.connections_total == 1

    serve(scenario, config(tls=TlsFiles(certs.server_cert, certs.server_key, certs.ca)))
