"""What a browser meets on a real node's ports (issue 12): CORS and refusals by origin on HTTP, the origin rule
on the WebSocket, the web app's files with a confining CSP, and no way out of the web root."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import websockets

from fanout.config import FanoutConfig
from tests.conftest import free_port
from tickfan.node import Node, NodeConfig
from tickfan.web import PLACEHOLDER, stream_sources
from vocab.origins import own_origins

FOREIGN = "https://evil.example"

Scenario = Callable[[Node, httpx.AsyncClient, str, str], Awaitable[None]]


def run_node(scenario: Scenario, web_root: Path | None = None) -> None:
    """``scenario(node, http client, own origin, stream url)`` against a started node allowing its own origins."""
    async def main() -> None:
        http, ws = free_port(), free_port()
        feed = free_port(socket.SOCK_DGRAM)
        own = own_origins("127.0.0.1", http)
        node = Node(NodeConfig(feeds=[("127.0.0.1", feed)], http=("127.0.0.1", http), ws=("127.0.0.1", ws),
                               session="TICKFAN001", stream=FanoutConfig(allowed_origins=own), web_root=web_root))
        await node.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", timeout=5) as client:
                await scenario(node, client, own[0], f"ws://127.0.0.1:{ws}/v1/stream")
        finally:
            await node.close()

    asyncio.run(main())


def test_http_grants_cors_to_its_own_origin_only_and_refuses_foreign_posts() -> None:
    async def scenario(node: Node, client: httpx.AsyncClient, own: str, stream: str) -> None:
        plain = await client.get("/healthz")  # no Origin: not a browser
        assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
        mine = await client.get("/healthz", headers={"Origin": own})
        assert mine.status_code == 200 and mine.headers["access-control-allow-origin"] == own
        assert "Origin" in mine.headers["vary"]
        preflight = await client.options("/v1/orders", headers={
            "Origin": own, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == own
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
        read = await client.get("/healthz", headers={"Origin": FOREIGN})  # answered, but never granted
        assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
        for method in ("POST", "DELETE"):
            refused = await client.request(method, "/v1/orders", headers={"Origin": FOREIGN}, content=b"{}")
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
            assert "access-control-allow-origin" not in refused.headers
        foreign_preflight = await client.options("/v1/orders", headers={
            "Origin": FOREIGN, "Access-Control-Request-Method": "POST"})
        assert foreign_preflight.status_code == 403
        assert "access-control-allow-origin" not in foreign_preflight.headers
        metrics = (await client.get("/metrics")).text
        assert 'tickfan_origin_checks_total{surface="http",verdict="refused"} 3.0' in metrics
        assert 'tickfan_origin_checks_total{surface="http",verdict="foreign_read"} 1.0' in metrics

    run_node(scenario)


def test_the_nodes_stream_takes_its_own_pages_and_clients_without_origin_not_foreign_pages() -> None:
    async def scenario(node: Node, client: httpx.AsyncClient, own: str, stream: str) -> None:
        for origin in (None, own, "http://localhost:" + own.rsplit(":", 1)[1]):
            async with websockets.connect(stream, origin=websockets.Origin(origin) if origin else None):
                pass
        with pytest.raises(websockets.InvalidStatus) as err:
            async with websockets.connect(stream, origin=websockets.Origin(FOREIGN)):
                pass
        assert err.value.response.status_code == 403
        metrics = (await client.get("/metrics")).text
        assert 'tickfan_origin_checks_total{surface="stream",verdict="refused"} 1.0' in metrics
        assert 'tickfan_origin_checks_total{surface="stream",verdict="granted"} 2.0' in metrics

    run_node(scenario)


def assert_confined(response: httpx.Response, stream: str) -> None:
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["img-src"] == "'self' data:"
    assert directives["frame-ancestors"] == "'none'"
    port = stream.split(":")[2].split("/")[0]
    # no ws://[::1]: CSP has no IPv6 literal sources (test_ipv6_literal_origins_get_no_csp_source)
    assert directives["connect-src"].split() == ["'self'", f"ws://127.0.0.1:{port}", f"ws://localhost:{port}"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_without_a_built_web_app_the_root_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async def scenario(node: Node, client: httpx.AsyncClient, own: str, stream: str) -> None:
        page = await client.get("/")
        assert page.status_code == 200 and page.content == PLACEHOLDER
        assert page.headers["content-type"].startswith("text/html")
        assert_confined(page, stream)
        missing = await client.get("/app.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        unknown_api = await client.post("/v1/nothing-here")
        assert unknown_api.status_code == 404  # the catch-all does not turn unknown routes into 405s

    # web/dist is committed: a package installed without it is what this is about
    monkeypatch.setattr("tickfan.web.DEFAULT_WEB_ROOT", tmp_path / "not-built")
    run_node(scenario)


async def raw_get(port: int, path: str) -> bytes:
    """A request line sent as written: clients would normalise the dots away."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def test_the_web_root_is_served_with_its_headers_and_nothing_outside_it(tmp_path: Path) -> None:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><script src=/assets/app.js></script>")
    (root / "assets" / "app.js").write_text("console.log('tickfan')")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    os.symlink(secret, root / "leak.txt")
    os.symlink(tmp_path, root / "up")

    async def scenario(node: Node, client: httpx.AsyncClient, own: str, stream: str) -> None:
        page = await client.get("/")
        assert page.status_code == 200 and "app.js" in page.text and page.headers["cache-control"] == "no-cache"
        assert_confined(page, stream)
        script = await client.get("/assets/app.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert_confined(script, stream)
        assert (await client.head("/assets/app.js")).status_code == 200
        port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
        for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
                     "/assets/%2e%2e/%2e%2e/secret.txt", "/..%5csecret.txt", "/leak.txt", "/up/secret.txt",
                     "/%00", "//etc/passwd", "/./index.html"):
            answer = await raw_get(port, path)
            assert b"TOP SECRET" not in answer and b"root:" not in answer, path
            assert answer.startswith((b"HTTP/1.1 404", b"HTTP/1.1 400")), (path, answer[:40])

    run_node(scenario, web_root=root)


def test_the_dev_token_route_exists_only_when_signing_with_the_development_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tickfan.devkey import ensure_dev_key
    from tickfan.trading_cli import DEV_USERS, dev_tokens
    from vocab.auth import JwksKeys, Verifier

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert dev_tokens(Verifier(secret="a-real-production-secret-of-32-bytes+")) is None  # no dev key on this host
    key = ensure_dev_key()
    dev = dev_tokens(Verifier(secret=key))
    assert dev is not None and dev.key == key and dev.users == frozenset(DEV_USERS) == {"alice", "bob"}
    assert dev_tokens(Verifier(secret="a-real-production-secret-of-32-bytes+")) is None  # another secret
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public)), "kid": "e1",
                                          "alg": "ES256"}]}))
    assert dev_tokens(Verifier(secret=key, jwks=JwksKeys(str(jwks)))) is None  # public keys: a real deployment


def test_the_page_finds_the_stream_from_v1_config_and_the_csp_allows_it() -> None:
    """The web app joins /v1/config's port and path to its own host: that URL is the node's stream, and the
    page's connect-src names it (else the browser would refuse the WebSocket before the node sees it)."""
    async def scenario(node: Node, client: httpx.AsyncClient, own: str, stream: str) -> None:
        answer = await client.get("/v1/config")
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-cache"
        config = answer.json()
        url = f"{config['stream_scheme']}://127.0.0.1:{config['stream_port']}{config['stream_path']}"
        assert url == stream
        assert url.removesuffix("/v1/stream") in answer.headers["content-security-policy"]
        async with websockets.connect(url, origin=websockets.Origin(own)):
            pass

    run_node(scenario)


def test_ipv6_literal_origins_get_no_csp_source() -> None:
    """CSP's host-source grammar has no IPv6 literals: Chromium rejects such a source with a console error, so
    it is left out (the IPv4 and name origins keep theirs)."""
    sources = stream_sources(["http://127.0.0.1:8000", "http://[::1]:8000", "http://localhost:8000"], 8765, tls=False)
    assert sources == ["ws://127.0.0.1:8765", "ws://localhost:8765"]
