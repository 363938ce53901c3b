"""Browser origins at the WebSocket upgrade, over real sockets (issue 12): a page of a foreign origin cannot open
the stream (HTTP 403 ``origin_not_allowed``), a page of an allowed one can, and clients that send no Origin
header (not browsers) always can."""

from __future__ import annotations

import json

import pytest
import websockets

from fanout.server import FanoutServer
from normalize import Books

from .conftest import config, serve, subscribe, until

OWN = "http://127.0.0.1:8000"


def test_no_origin_and_allowed_origins_open_the_stream_and_foreign_ones_get_403() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as plain:  # the websockets client sends no Origin by default
            await plain.send(subscribe("AAPL"))
            await until(plain, "subscribed")
        async with websockets.connect(url, origin=websockets.Origin(OWN)) as page:
            await page.send(subscribe("AAPL"))
            await until(page, "subscribed")
        for foreign in ("https://evil.example", "http://127.0.0.1:8001", "null"):
            with pytest.raises(websockets.InvalidStatus) as err:
                async with websockets.connect(url, origin=websockets.Origin(foreign)):
                    pass
            response = err.value.response
            assert response.status_code == 403
            assert json.loads(response.body or b"{}")["error"]["code"] == "origin_not_allowed"
        assert server.origins.counters() == {"absent": 1, "granted": 1, "refused": 3, "foreign_read": 0}
        assert server.stats.clients == 0 and server.limits.open == 0  # a refused upgrade holds no slot

    serve(scenario, config(allowed_origins=(OWN,)))


def test_a_server_configured_with_no_origins_takes_no_browser_page() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(url, origin=websockets.Origin(OWN)):
                pass
        assert err.value.response.status_code == 403
        async with websockets.connect(url):
            pass

    serve(scenario, config())


def test_a_bad_allowed_origin_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="bad origin"):
        config(allowed_origins=("127.0.0.1:8000",))
