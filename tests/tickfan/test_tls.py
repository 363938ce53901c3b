"""A node serving https:// and wss:// from its --tls-* flags, and the clients' --ca (trustme certificates)."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl

import httpx
import pytest
import websockets

from fanout.server import FanoutServer
from normalize import Books
from tests.conftest import Certs, eventually, free_port
from tests.fanout.conftest import config, subscribe, until
from tests.fanout.conftest import serve as run
from tickfan import watch
from tickfan.args import tls_files
from tickfan.node import Node, add_arguments, node_config
from vocab.tls import TlsFiles, client_context


def node_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--session", "TICKFAN001", *argv])  # a feed needs its session named


def test_node_serves_https_and_wss_from_its_flags(certs: Certs) -> None:
    http, ws = free_port(), free_port()
    args = node_args("--feed", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{http}", "--ws", f"127.0.0.1:{ws}",
                     "--tls-cert", certs.server_cert, "--tls-key", certs.server_key)

    async def main() -> None:
        node = Node(node_config(args))
        await node.start()
        try:
            assert node.endpoints()["metrics (Prometheus)"].startswith("https://")
            trusted = client_context(certs.ca)
            async with httpx.AsyncClient(verify=trusted) as client:
                r = await client.get(f"https://127.0.0.1:{http}/metrics")
                assert r.status_code == 200 and "tickfan" in r.text
            async with httpx.AsyncClient() as plain:
                with pytest.raises(httpx.HTTPError):  # no plain HTTP on a TLS port
                    await plain.get(f"http://127.0.0.1:{http}/healthz")
            async with websockets.connect(f"wss://127.0.0.1:{ws}/v1/stream", ssl=trusted) as conn:
                await conn.send(subscribe("AAPL"))
                assert (await until(conn, "error")).error.code == "unknown_symbol"  # no feed: the link is what counts
        finally:
            await node.close()

    asyncio.run(main())


def test_tls_flags_are_checked() -> None:
    with pytest.raises(SystemExit, match="need --tls-cert"):
        tls_files(node_args("--tls-client-ca", "/etc/hostname"))
    with pytest.raises(SystemExit, match="not found"):
        tls_files(node_args("--tls-cert", "/nonexistent/cert.pem"))


def _watch_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    watch.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_watch_over_wss_with_ca(certs: Certs, capsys: pytest.CaptureFixture[str]) -> None:
    out: list[str] = []

    def printed() -> bool:
        out.append(capsys.readouterr().out)
        return '"type":"snapshot"' in "".join(out)

    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        untrusted = await watch._watch(_watch_args("AAPL", "--json", "--url", url), asyncio.Event())
        assert untrusted == 1  # the system trust store does not know trustme's CA
        assert "cannot connect" in capsys.readouterr().err
        stop = asyncio.Event()
        task = asyncio.create_task(watch._watch(_watch_args("AAPL", "--json", "--url", url, "--ca", certs.ca), stop))
        await eventually(printed, what="the snapshot line over wss://")
        stop.set()
        assert await task == 0

    run(scenario, config(tls=TlsFiles(certs.server_cert, certs.server_key)))
    assert json.loads("".join(out).splitlines()[0])["symbol"] == "AAPL"


def test_client_context_verifies_the_host_name(certs: Certs) -> None:
    async def scenario(server: FanoutServer, books: Books, url: str) -> None:
        # the certificate names 127.0.0.1 and localhost; another name for the same address is refused
        with pytest.raises(ssl.SSLCertVerificationError):
            async with websockets.connect(url, ssl=client_context(certs.ca), server_hostname="evil.example"):
                pass

    run(scenario, config(tls=TlsFiles(certs.server_cert, certs.server_key)))


def test_execute_wants_the_market_makers_ca_with_a_client_certificate(certs: Certs,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from tickfan import trading_cli

    parser = argparse.ArgumentParser()
    trading_cli.add_execute_arguments(parser)
    cert, key = certs.client("TICKFAN")
    assert trading_cli.execute_main(parser.parse_args(["--fix-cert", cert, "--fix-key", key])) == 2
    assert "--fix-ca" in capsys.readouterr().err


def test_migrations_need_one_dsn_per_shard() -> None:
    from tickfan import trading_cli

    parser = argparse.ArgumentParser()
    trading_cli.add_api_arguments(parser)
    args = parser.parse_args(["--db", "postgresql://svc@h/a", "--db", "postgresql://svc@h/b",
                              "--migrate-db", "postgresql://postgres@h/a"])
    with pytest.raises(SystemExit, match="1 migration DSN"):
        trading_cli.migration_dsns(args)
    args.migrate_db.append("postgresql://postgres@h/b")
    assert trading_cli.migration_dsns(args) == ["postgresql://postgres@h/a", "postgresql://postgres@h/b"]
