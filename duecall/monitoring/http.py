"""The endpoint's HTTP server: uvicorn (h11) on its own loopback socket, in the dialer's event loop.

One path, `/metrics` (anything else 404, another method 405), headers bounded (400), each
connection closed REQUEST_SECONDS after it opened whatever it is doing, at most MAX_CONNECTIONS at
once (then 503)."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from dialer.core.errors import ConfigError

REQUEST_SECONDS = 5.0  # a connection is closed this long after it opened: a scrape takes milliseconds
MAX_CONNECTIONS = 8  # more at once get 503
MAX_HEADER_BYTES = 8 * 1024  # a request line and headers larger than this get 400


def metrics_app(registry: CollectorRegistry) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def not_found(_: Request, __: Exception) -> Response:
        return PlainTextResponse("not found\n", status_code=404)

    return Starlette(
        routes=[Route("/metrics", metrics, methods=["GET"])], exception_handlers={404: not_found}
    )


class _Bounded(H11Protocol):
    """uvicorn's h11 protocol with a deadline on the whole connection: a client that sends its
    request slowly (or never reads the answer) is cut off after REQUEST_SECONDS."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.call_later(REQUEST_SECONDS, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.cancel()
        super().connection_lost(exc)


def listen(host: str, port: int) -> socket.socket:
    """The endpoint's socket, bound now so a taken port stops the start with a clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"the metrics endpoint cannot listen on {host}:{port} ([metrics] port): {exc}"
        ) from exc
    sock.setblocking(False)
    return sock


def server(app: Starlette) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http=_Bounded,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=2,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
    )
    return uvicorn.Server(config)
