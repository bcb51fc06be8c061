"""Prometheus metrics of the gateway: requests, time to first audio, gaps between frames, queue depth, errors."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["GatewayMetrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """One registry per app, so several apps (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "chorus_gateway_requests", "Requests by endpoint and audio format", ["endpoint", "format"], registry=r
        )
        self.enqueued = Counter("chorus_gateway_enqueued", "Requests enqueued, by tenant", ["tenant"], registry=r)
        self.ttfa = Histogram(
            "chorus_gateway_time_to_first_audio_seconds",
            "From the request's arrival to its first audio frame leaving",
            buckets=_LATENCY,
            registry=r,
        )
        self.frame_gap = Histogram(
            "chorus_gateway_frame_gap_seconds",
            "Time between consecutive frames of a stream",
            buckets=_LATENCY,
            registry=r,
        )
        self.frames = Counter("chorus_gateway_frames", "Audio frames streamed", registry=r)
        self.cancelled = Counter("chorus_gateway_cancelled", "Requests cancelled (DELETE or disconnect)", registry=r)
        self.errors = Counter("chorus_gateway_errors", "Errors by kind", ["code"], registry=r)
        self.http_errors = Counter("chorus_gateway_http_errors", "Error responses by status", ["status"], registry=r)
        self.in_use = Gauge("chorus_gateway_slots_in_use", "Streams and calls held open now", ["kind"], registry=r)
        self.depth = Gauge("chorus_queue_depth", "Segments queued, by tenant", ["tenant"], registry=r)

    def set_depth(self, depth: dict[str, int]) -> None:
        self.depth.clear()
        for name, value in depth.items():
            if ":" not in name:
                self.depth.labels(tenant=name).set(value)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
