"""Browser origins: an ASGI middleware that refuses calls from pages the operator did not allow.

A browser names the page's origin in ``Origin``; non-browser clients send none
and pass. Without this a page anywhere could drive a ``--no-auth`` gateway (or
one that reads ``?api_key=``) from its visitors' browsers, WebSockets included
(they are not subject to CORS). The allow-list is the gateway's ``cors_origins``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http import HttpError, error_response

__all__ = ["OriginGuard"]


class OriginGuard:
    """Refuses browser calls from origins that are neither this gateway's own nor allow-listed:
    HTTP with 403, a WebSocket by closing it with 4403 before it is accepted."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed}

    def _ok(self, scope: Scope) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is None or "*" in self.allowed:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        host = headers.get("host", "").lower()
        own = "https" if scope.get("scheme") in ("https", "wss") else "http"
        return bool(host) and origin == f"{own}://{host}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._ok(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403, "reason": "origin not allowed"})
            return
        exc = HttpError(403, "this origin is not allowed to call the API (see --cors-origin)", "origin_not_allowed")
        await error_response(exc)(scope, receive, send)
