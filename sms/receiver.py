"""DueCall's receiver of gateway callbacks: delivery reports and inbound texts, on loopback.

URLs carry a secret path segment (generated at set-up, `sms.kannel.receiver_secret`): a request
without it gets 404, as for a page that does not exist. A malformed callback gets 400 and is
logged, and nothing is changed. A callback the store could not write gets 500, so the gateway
tries it again later (Kannel retries while the receiver is down or failing).

A real server (uvicorn) with a large accept backlog: a burst of callbacks from the gateway must
queue in the kernel, not be refused (a backlog of 5 lost a third of 500 callbacks).
"""

from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import Mapping
from typing import Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dialer.core.clock import Clock
from dialer.core.errors import SmsGatewayError
from sms.gateway import CallbackError, DeliveryReport, Gateway, Inbound

log = logging.getLogger(__name__)

BACKLOG = 4096
MAX_BODY = 64 * 1024  # no gateway callback DueCall reads is near this
MAX_QUERY = 8 * 1024


class CallbackSink(Protocol):
    """Where the receiver hands what the gateway said (sms.inbox.Inbox)."""

    async def report(self, report: DeliveryReport) -> bool | None:
        """Record a delivery report; None when no text has its id."""
        ...

    async def inbound(self, inbound: Inbound) -> None: ...


def receiver_app(gateway: Gateway, sink: CallbackSink, secret: str, clock: Clock) -> Starlette:
    async def dlr(request: Request) -> Response:
        if not _secret_ok(request, secret):
            return _not_found()
        try:
            given = request.path_params.get("message_id")
            message_id = None if given is None else int(given)
            params, body = await _read(request)
            report = gateway.report(message_id, params, body)
        except (CallbackError, ValueError) as exc:
            return _bad(request, exc)
        known = await sink.report(report)
        if known is None:
            log.warning("delivery report for unknown text %d: %s", report.message_id, report.reason[:200])
            return PlainTextResponse("unknown message\n", status_code=404)
        return PlainTextResponse("ok\n")

    async def mo(request: Request) -> Response:
        if not _secret_ok(request, secret):
            return _not_found()
        try:
            params, body = await _read(request)
            inbound = gateway.inbound(params, body, clock.now())
        except (CallbackError, ValueError) as exc:
            return _bad(request, exc)
        await sink.inbound(inbound)
        return PlainTextResponse("ok\n")

    routes = [
        Route("/sms/{secret}/dlr/{message_id:int}", dlr, methods=["GET", "POST"]),
        Route("/sms/{secret}/dlr", dlr, methods=["GET", "POST"]),  # a vendor's one fixed report URL
        Route("/sms/{secret}/mo", mo, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)


def _secret_ok(request: Request, secret: str) -> bool:
    given = str(request.path_params.get("secret", ""))
    return hmac.compare_digest(given.encode(), secret.encode())


def _not_found() -> Response:
    return PlainTextResponse("not found\n", status_code=404)


def _bad(request: Request, exc: Exception) -> Response:
    log.warning("refused callback %s: %s", request.url.path.rsplit("/", 1)[-1][:40], exc)
    return PlainTextResponse(f"bad request: {exc}\n"[:300], status_code=400)


async def _read(request: Request) -> tuple[Mapping[str, str], bytes]:
    """The query (and a form body's fields) and the raw body, both bounded."""
    if len(request.url.query) > MAX_QUERY:
        raise CallbackError(f"query string over {MAX_QUERY} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise CallbackError(f"body over {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise CallbackError(f"body over {MAX_BODY} bytes")
    params = dict(request.query_params)
    return params, bytes(body)


def listen(port: int, host: str = "127.0.0.1") -> socket.socket:
    """The receiver's socket, bound here so a taken port is a clear error (uvicorn would exit)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise SmsGatewayError(
            f"the SMS receiver cannot listen on {host}:{port} ([sms] receiver_port): {exc}"
        ) from exc
    sock.setblocking(False)
    return sock


def server(app: Starlette) -> uvicorn.Server:
    """A uvicorn server for the receiver: `await server.serve(sockets=[listen(port)])`."""
    config = uvicorn.Config(
        app,
        backlog=BACKLOG,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)
