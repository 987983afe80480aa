"""OpenTelemetry tracing for control-plane work (connects, subscriptions, demand, upstream calls).

Never per market-data message: a span costs microseconds, fan-out has none to spare. Each service
builds its own provider and passes the tracer down; nothing is installed globally.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

from .config import ConfigError, TracingConfig


class Tracing:
    """A tracer plus the provider behind it (so `shutdown()` flushes pending spans)."""

    def __init__(self, tracer: trace.Tracer, provider: TracerProvider | None) -> None:
        self.tracer = tracer
        self.provider = provider

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def _exporter(cfg: TracingConfig) -> SpanExporter:
    if cfg.exporter == "console":
        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            "config error: tracing.exporter: otlp needs the package opentelemetry-exporter-otlp-proto-http"
        ) from None
    return OTLPSpanExporter(endpoint=cfg.endpoint)


def setup_tracing(service: str, cfg: TracingConfig, processor: SpanProcessor | None = None) -> Tracing:
    """A no-op tracer unless tracing is enabled; `processor` lets tests collect spans in memory."""
    if not cfg.enabled and processor is None:
        return Tracing(trace.NoOpTracer(), None)
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"argus-{service}"}),
        sampler=ParentBasedTraceIdRatio(cfg.sample_ratio),
    )
    provider.add_span_processor(processor or BatchSpanProcessor(_exporter(cfg)))
    return Tracing(provider.get_tracer("argus"), provider)
