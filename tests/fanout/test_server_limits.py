"""The stream's abuse limits over real sockets (issue 10): refused at the upgrade, closed with a code and reason.

The per-address limits skip loopback clients unless ``limit_loopback`` is set; these tests set it (their clients
are all 127.0.0.1), except the one that shows loopback is exempt by default.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
from typing import Any

import pytest
import websockets

from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import Certs, eventually
from tickfan_proto import stream_pb2 as pb
from vocab.auth import AuthError, Claims
from vocab.tls import TlsFiles, client_context

from .conftest import client_message, closed, config, serve, subscribe, until


async def refused(url: str, **kw: Any) -> websockets.InvalidStatus:
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(url, **kw):
            pass
    return err.value


def body(err: websockets.InvalidStatus) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(err.response.body or b"{}")["error"]
    return error


def test_too_many_connections_from_one_address_get_429() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as a, websockets.connect(url):
            err = await refused(url)
            assert err.response.status_code == 429 and body(err)["code"] == "too_many_connections"
            assert err.response.headers["Retry-After"] == "1"
            assert server.limits.refused["per_ip"] == 1 and server.stats.clients == 2
            await a.close()
            async with websockets.connect(url) as c:  # a slot freed: accepted again
                await c.send(subscribe("AAPL"))
                await until(c, "subscribed")

    serve(scenario, config(limit_loopback=True, max_connections_per_ip=2))


def test_loopback_is_exempt_from_per_address_limits_by_default() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        clients = [await websockets.connect(url) for _ in range(6)]
        try:
            assert server.stats.clients == 6 and server.limits.refused["per_ip"] == 0
        finally:
            for ws in clients:
                await ws.close()

    serve(scenario, config(max_connections_per_ip=1, connection_burst_per_ip=1))


def test_new_connections_beyond_the_rate_get_429_with_retry_after() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        for _ in range(3):  # the burst: opened and closed at once
            async with websockets.connect(url):
                pass
        err = await refused(url)
        assert err.response.status_code == 429 and body(err)["code"] == "connection_rate_limited"
        assert err.response.headers["Retry-After"] == "10"  # one connection per 10 s
        assert server.limits.refused["connection_rate"] == 1

    serve(scenario, config(limit_loopback=True, connection_rate_per_ip=0.1, connection_burst_per_ip=3))


def test_past_the_node_wide_connection_rate_an_upgrade_gets_503_server_busy() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        for _ in range(2):  # a second's worth at once
            async with websockets.connect(url):
                pass
        err = await refused(url)
        assert err.response.status_code == 503 and body(err)["code"] == "server_busy"
        assert "Retry-After" in err.response.headers
        assert server.limits.refused["node_connection_rate"] == 1

    serve(scenario, config(connection_rate=2.0))


def test_the_total_cap_answers_503_to_everyone() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url), websockets.connect(url):
            err = await refused(url)
            assert err.response.status_code == 503 and body(err)["code"] == "server_full"
            assert server.limits.refused["total"] == 1

    serve(scenario, config(max_connections=2))


def verify(token: str) -> Claims:
    if not token.startswith("user-"):
        raise AuthError("invalid_token", "not a test token")
    return Claims(token, float("inf"))


def test_authenticated_connections_per_user_are_capped_with_a_1008_close() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with (websockets.connect(f"{url}?token=user-alice") as first,
                    websockets.connect(f"{url}?token=user-alice") as second):
            close = await closed(second)
            assert close.rcvd is not None and close.rcvd.code == 1008 and close.rcvd.reason == "too_many_connections"
            await first.send(client_message(ping=pb.Ping(nonce=5)))
            assert (await until(first, "pong")).pong.nonce == 5  # the first one is untouched
            async with websockets.connect(f"{url}?token=user-bob") as bob, websockets.connect(url) as anonymous:
                for ws in (bob, anonymous):
                    await ws.send(subscribe("AAPL"))
                    await until(ws, "subscribed")
            assert server.limits.refused["per_user"] == 1 and server.limits.per_user == {"user-alice": 1}
        await asyncio.sleep(0)
        async with websockets.connect(f"{url}?token=user-alice") as again:  # alice's slot is free again
            await again.send(subscribe("AAPL"))
            await until(again, "subscribed")

    serve(scenario, config(max_connections_per_user=1), verify=verify)


def test_empty_fragments_past_the_limit_close_with_1009() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as ws:
            await ws.send([b""] * 300)  # one message in 300 empty fragments
            close = await closed(ws)
            assert close.rcvd is not None and close.rcvd.code == 1009
        assert server.stats.limit_closes == {"too_many_fragments": 1}

    serve(scenario)


def test_fragments_beyond_their_rate_close_with_1008() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        ping = client_message(ping=pb.Ping(nonce=1))
        async with websockets.connect(url) as ws:
            try:
                for _ in range(10):  # 30 fragments at once against a burst of 8
                    await ws.send([ping[:1], ping[1:2], ping[2:]])
            except websockets.ConnectionClosed:
                pass
            close = await closed(ws)
            assert close.rcvd is not None and close.rcvd.code == 1008
        assert server.stats.limit_closes == {"fragment_rate": 1}

    serve(scenario, config(max_fragments=8, max_fragments_per_second=1))


def test_subscribe_churn_past_the_symbol_budget_gets_an_error_frame() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        async with websockets.connect(url) as ws:
            codes: list[str] = []
            names = ["AAPL", "TSLA", "MSFT"]
            for kind in ("subscribe", "unsubscribe", "subscribe"):  # 3 symbols each against a burst of 6
                if kind == "subscribe":
                    await ws.send(client_message(subscribe=pb.Subscribe(symbols=names)))
                else:
                    await ws.send(client_message(unsubscribe=pb.Unsubscribe(symbols=names)))
                reply = await until(ws, "error") if len(codes) == 2 else await until(ws, "subscribed")
                codes.append(reply.error.code if reply.WhichOneof("kind") == "error" else "ok")
            assert codes == ["ok", "ok", "symbol_rate_limited"]
        assert server.stats.symbol_rate_limited == 1

    serve(scenario, config(max_symbols=3, symbol_burst=6, max_symbols_per_second=0.01))


def test_a_client_that_never_answers_the_close_is_cut_after_close_timeout() -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        writer.write(b"\x82\xe4\x00\x00\x00\x00" + b"x" * 100)  # one masked binary frame of 100 bytes
        await eventually(lambda: server.limits.open == 0 and not server._closing,
                         what="the connection cut after close_timeout")
        got = await reader.read()  # the error frame, then the close (1009), then EOF; nothing after the close
        close = got.rindex(b"\x88")
        assert got[close + 2:close + 4] == (1009).to_bytes(2, "big") and got[close + 4:] == b"message too big"
        assert server.stats.limit_closes == {"too_large": 1} and server.stats.clients == 0
        writer.close()

    serve(scenario, config(max_message_bytes=16, close_timeout=0.2))


def test_per_address_limits_see_the_client_behind_tls(certs: Certs) -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        context = client_context(certs.ca)
        async with websockets.connect(url, ssl=context):
            err = await refused(url, ssl=context)
            assert err.response.status_code == 429 and server.limits.per_ip == {"127.0.0.1": 1}

    serve(scenario, config(limit_loopback=True, max_connections_per_ip=1,
                           tls=TlsFiles(certs.server_cert, certs.server_key)))


def listen_backlog(port: int) -> int | None:
    """The accept queue the kernel gives a listening port (``ss``' Send-Q for a LISTEN socket), None without ss."""
    try:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out.split()[2]) if out.split() else None


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a listening socket's backlog")
def test_the_listen_backlog_is_the_configured_one_not_asyncios_100() -> None:
    """A reconnect storm queues in the kernel instead of losing SYNs to a 100-deep accept queue."""
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        backlog = listen_backlog(server.port)
        somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
        assert backlog == min(1500, somaxconn)

    serve(scenario, config(listen_backlog=1500))


def test_picows_logs_no_upgrade_request_and_no_line_per_connection() -> None:
    """Its level 9 carries whole upgrade requests (credentials), through a child logger per connection: never
    enabled, even with the root logger at 1. Its per-connection INFO lines follow the root's level (WARNING in
    the commands): not one per connection."""
    from fanout.server import follow_root_log_level

    root = logging.getLogger()
    child = logging.getLogger("picows.tickfan.12345")  # how picows names a connection's logger
    level = root.level
    try:
        root.setLevel(1)
        follow_root_log_level()
        assert not child.isEnabledFor(9) and child.isEnabledFor(logging.DEBUG)
        root.setLevel(logging.WARNING)
        follow_root_log_level()
        assert not child.isEnabledFor(logging.INFO) and child.isEnabledFor(logging.WARNING)
    finally:
        root.setLevel(level)
        follow_root_log_level()
