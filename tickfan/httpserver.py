"""A small HTTP server inside a process's own event loop, for routes such as ``/livez``, ``/readyz``, ``/metrics``.

``EmbeddedHTTPServer`` is uvicorn that leaves signals to the process (the process owns SIGTERM: it drains).
``SideServer`` serves a list of Starlette routes on one address, for processes whose work is not HTTP (the
execution worker, the market-maker simulator): add routes before ``start``, or to ``routes`` at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vocab.tls import TlsFiles


class EmbeddedHTTPServer(uvicorn.Server):
    """uvicorn inside our loop: the process owns signals, so uvicorn must not capture them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def uvicorn_tls(tls: TlsFiles) -> dict[str, Any]:
    """uvicorn's TLS options for these files: none when no certificate is configured (plain HTTP)."""
    if not tls.enabled:
        return {}
    options: dict[str, Any] = {"ssl_certfile": tls.cert, "ssl_keyfile": tls.key}
    if tls.ca is not None:  # mutual TLS: a client without a certificate signed by this CA fails the handshake
        options.update(ssl_ca_certs=tls.ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


async def serve_embedded(app: Any, host: str, port: int, **options: Any
                         ) -> tuple[EmbeddedHTTPServer, asyncio.Task[None]]:
    """Start ``app`` on host:port and return once it listens (a bind error is raised here)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", access_log=False,
                            **options)
    server = EmbeddedHTTPServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the bind error, if any
            raise RuntimeError(f"HTTP server on {host}:{port} exited at start")
        await asyncio.sleep(0.01)
    return server, task


class SideServer:
    """Starlette routes on ``host:port`` (port 0: a free one, see ``port`` once started)."""

    def __init__(self, host: str, port: int, routes: list[Route] | None = None) -> None:
        self.host = host
        self._port = port
        self.routes: list[Route] = list(routes or [])
        self._server: EmbeddedHTTPServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._server is not None and self._server.servers:
            for server in self._server.servers:
                for sock in server.sockets:
                    return int(sock.getsockname()[1])
        return self._port

    async def start(self) -> None:
        async def not_found(request: Request, exc: Exception) -> Response:
            return JSONResponse({"error": {"code": "not_found", "message": f"no route {request.url.path}"}}, 404)

        app = Starlette(routes=self.routes, exception_handlers={404: not_found})
        self.routes = app.router.routes  # type: ignore[assignment]  # routes added later are served too
        self._server, self._task = await serve_embedded(app, self.host, self._port)

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
