"""The edge gateway: an ASGI app (Starlette) that enqueues through the broker and streams audio as frames arrive.

:func:`create_app` assembles it from the modules that each hold one concern:

* :mod:`gateway.service`: :class:`GatewayConfig` and the shared state, :class:`~gateway.service.Gateway`;
* :mod:`gateway.routes`: the HTTP handlers and the route table (the endpoints are listed there);
* :mod:`gateway.streaming`: audio and Server-Sent Events responses; :mod:`gateway.websocket`: ``/v1/ws``;
* :mod:`gateway.auth`: API keys; :mod:`gateway.origin`: the browser-origin guard;
* :mod:`gateway.http`: validation and error answers; :mod:`gateway.limits`: admission;
  :mod:`gateway.encode`: audio encoders; :mod:`gateway.subscriber`: reading audio streams.

Isolation (see docs/SECURITY.md): bodies are capped (413), streams and calls are
bounded per tenant (429) and in total (503) by :mod:`gateway.limits`, Redis
connections come from bounded pools sized from those limits (streams and control
calls apart, so open streams never starve an enqueue), browsers are checked by
``Origin`` against an allow-list, and ``/metrics`` needs a token (or its own
loopback port, ``chorus gateway --metrics-port``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from gateway.origin import OriginGuard
from gateway.routes import ROUTES, http_exception, open_metrics
from gateway.service import Gateway, GatewayConfig

__all__ = ["WS_MAX_QUEUE", "GatewayConfig", "create_app", "create_metrics_app", "server_limits"]

WS_MAX_QUEUE = 4
"""WebSocket messages the server holds unread per connection (each at most the body limit)."""


def server_limits(config: GatewayConfig) -> dict[str, Any]:
    """The uvicorn options that enforce chorus's limits before anything is buffered or parsed.

    The server library caps WebSocket messages at 16 MiB and accepts permessage-deflate by
    default, so 16 KB on the wire could become 16 MiB of JSON before the session's own check;
    here the cap is the gateway's body limit, compression is not negotiated (a compressed
    frame is then a protocol error, refused unread), and at most :data:`WS_MAX_QUEUE` messages
    wait per connection."""
    return {
        "ws_max_size": config.max_body_bytes,
        "ws_per_message_deflate": False,
        "ws_max_queue": WS_MAX_QUEUE,
    }


def create_app(config: GatewayConfig) -> Starlette:
    """The gateway's API app; its :class:`~gateway.service.Gateway` is ``app.state.gateway``."""
    gw = Gateway(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gw.close()

    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["X-Request-Id", "X-Sample-Rate", "Retry-After"],
            max_age=600,
        ),
        Middleware(OriginGuard, allowed=config.cors_origins),
    ]
    app = Starlette(
        routes=list(ROUTES),
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={404: http_exception, 405: http_exception},
    )
    app.state.gateway = gw
    return app


def create_metrics_app(app: Starlette) -> Starlette:
    """``/metrics`` of ``app``'s gateway alone, without a token: serve it on a loopback port only."""
    metrics_app = Starlette(routes=[Route("/metrics", open_metrics)])
    metrics_app.state.gateway = app.state.gateway
    return metrics_app
