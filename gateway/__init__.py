"""The edge: the HTTP, SSE and WebSocket gateway (:func:`gateway.app.create_app`) and the subscriber API."""

from gateway.subscriber import AsyncSubscriber, Reorderer, StreamState, Subscriber

__all__ = ["AsyncSubscriber", "Reorderer", "StreamState", "Subscriber"]
