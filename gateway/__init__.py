"""The edge: subscriber API (and, later, the HTTP/SSE/WebSocket gateway)."""

from gateway.subscriber import AsyncSubscriber, Reorderer, StreamState, Subscriber

__all__ = ["AsyncSubscriber", "Reorderer", "StreamState", "Subscriber"]
