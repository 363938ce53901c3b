"""The web app's static files on the node's HTTP port (``GET /``), with the headers that confine the page.

Files come from ``--web-root DIR``, else the package's ``web/dist`` once built, else a one-page placeholder
saying the web app is not built. Every answer carries a Content-Security-Policy without ``'unsafe-inline'``
(scripts, styles and fetches from this origin only, plus the stream's WebSocket; no framing), ``nosniff`` and
``no-referrer``. A path with ``..``, ``.``, a backslash or a NUL segment, or one resolving (through a symlink)
outside the root, is 404: nothing outside the directory is ever served. ``GET /v1/config`` tells the page where
the stream is (its port, path and scheme: the page joins them to its own host, which the CSP's connect-src
allows). The catch-all route takes every method so that
a path no other route serves stays a JSON 404 ``not_found`` (not a 405 from this catch-all).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

EVERY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# web/dist, shipped in the package as tickfan/webapp (in the repository a link to web/dist)
DEFAULT_WEB_ROOT = (Path(__file__).parent / "webapp").resolve()
PLACEHOLDER = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>tickfan</title></head>
<body>
<h1>tickfan</h1>
<p>The web app is not built. Build <code>web/</code> (see the README), or start the node with
<code>--web-root DIR</code> to serve a built copy.</p>
<p>Meanwhile: <a href="/v1/quotes?symbols=AAPL,TSLA,NVDA">/v1/quotes</a>, <a href="/metrics">/metrics</a>,
<a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
"""


def stream_sources(origins: Iterable[str], ws_port: int, *, tls: bool) -> list[str]:
    """The stream's WebSocket origins as the pages of ``origins`` reach it: each one's host on ``ws_port``."""
    scheme = "wss" if tls else "ws"
    out: list[str] = []
    for origin in origins:
        parts = urlsplit(origin)
        host = parts.netloc if parts.port is None else parts.netloc.rsplit(":", 1)[0]
        if host.startswith("["):
            continue  # CSP's host-source has no IPv6 literals: browsers reject the whole source (and say so)
        source = f"{scheme}://{host}:{ws_port}"
        if source not in out:
            out.append(source)
    return out


def content_security_policy(connect: Iterable[str]) -> str:
    return "; ".join((
        "default-src 'self'",
        " ".join(("connect-src 'self'", *connect)),
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def safe_file(root: Path, path: str) -> Path | None:
    """The file under ``root`` that URL path ``path`` names (a directory: its index.html), or None when it names
    nothing there: a missing file, or any attempt to leave the root."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") or "\\" in p or "\x00" in p for p in parts):
        return None
    try:
        base = root.resolve(strict=True)
        target = base.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a symlink loop
        return None
    if not target.is_relative_to(base):
        return None  # a symlink pointing out of the root
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


class WebApp:
    """Serves ``root`` (None: the placeholder page) with the confining headers."""

    def __init__(self, root: Path | None, connect: Iterable[str], *, stream_port: int = 0, tls: bool = False) -> None:
        self.root = root
        self.stream = {"stream_port": stream_port, "stream_path": "/v1/stream", "stream_scheme": "wss" if tls else "ws"}
        self.headers = {
            "Content-Security-Policy": content_security_policy(connect),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }

    @classmethod
    def configured(cls, web_root: Path | None, connect: Iterable[str], *, stream_port: int = 0,
                   tls: bool = False) -> WebApp:
        """``--web-root`` if given (it must be a directory), else the package's built ``web/dist`` if any."""
        if web_root is not None:
            if not web_root.is_dir():
                raise ValueError(f"--web-root {web_root} is not a directory")
            return cls(web_root, connect, stream_port=stream_port, tls=tls)
        return cls(DEFAULT_WEB_ROOT if DEFAULT_WEB_ROOT.is_dir() else None, connect, stream_port=stream_port, tls=tls)

    async def config(self, request: Request) -> Response:
        """Where the page finds the stream: the port and path on the page's own host (no host here: the page's
        host is the one its origin was allowed for)."""
        return Response(orjson.dumps(self.stream), media_type="application/json",
                        headers={**self.headers, "Cache-Control": "no-cache"})

    async def serve(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return self._not_found(request)
        path = request.path_params.get("path", "")
        if self.root is None:
            if path in ("", "index.html"):
                return Response(PLACEHOLDER, media_type="text/html; charset=utf-8", headers=self.headers)
            return self._not_found(request)
        found = safe_file(self.root, path)
        if found is None:
            return self._not_found(request)
        headers = dict(self.headers)
        if found.name == "index.html":
            headers["Cache-Control"] = "no-cache"  # hashed assets may be cached; the page naming them may not
        return FileResponse(found, headers=headers)

    def _not_found(self, request: Request) -> Response:
        body = {"error": {"code": "not_found", "message": f"no route {request.url.path[:200]}", "symbols": []}}
        return Response(orjson.dumps(body), status_code=404, media_type="application/json", headers=self.headers)

    def routes(self) -> list[Route]:
        """``GET /v1/config``, then the catch-all route: mount them after every other."""
        config: Callable[[Request], Awaitable[Response]] = self.config
        endpoint: Callable[[Request], Awaitable[Response]] = self.serve
        return [Route("/v1/config", config, methods=["GET"]),
                Route("/{path:path}", endpoint, methods=list(EVERY_METHOD))]
