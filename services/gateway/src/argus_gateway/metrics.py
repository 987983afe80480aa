"""The gateway's Prometheus metrics (names are part of the README's contract)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.connections_total = Counter("websocket_connections_total", "WebSocket connections accepted", registry=r)
        self.active_connections = Gauge("websocket_active_connections", "Open WebSocket connections", registry=r)
        self.active_subscriptions = Gauge(
            "websocket_active_subscriptions", "Streams held, summed over connections", registry=r
        )
        self.messages_sent = Counter(
            "websocket_messages_sent_total", "Messages written to clients (each envelope of a batch counts)", registry=r
        )
        self.writes = Counter(
            "websocket_writes_total",
            "Transport writes: at most one per client per flush, carrying all it had queued",
            registry=r,
        )
        self.bytes_sent = Counter("websocket_bytes_sent_total", "Bytes written to clients", registry=r)
        self.messages_received = Counter(
            "websocket_messages_received_total", "Messages received from clients", registry=r
        )
        self.latency = Histogram(
            "websocket_latency_seconds",
            "Ingestor publish to gateway write, sampled: up to 32 events of each flush pass",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter("websocket_errors_total", "ERROR replies sent, by code", ["code"], registry=r)
        self.disconnects = Counter(
            "websocket_disconnects_total", "Closed connections, by reason", ["reason"], registry=r
        )
        self.gaps = Counter("websocket_gaps_total", "GAP notices sent, by reason", ["reason"], registry=r)
        self.dropped = Counter(
            "websocket_dropped_messages_total", "Data frames not delivered (conflated or gapped)", ["why"], registry=r
        )
        self.nats_subjects = Gauge("gateway_nats_subscriptions", "NATS data subjects subscribed", registry=r)
        self.nats_messages = Counter("gateway_nats_messages_total", "Events received from NATS", registry=r)
        self.nats_connected = Gauge("gateway_nats_connected", "1 while connected to NATS", registry=r)
        self.sources_down = Gauge("gateway_sources_down", "Sources whose heartbeat is missing", registry=r)
        self.store_requests = Counter(
            "gateway_store_requests_total",
            "Streams looked up in JetStream retention (newest value, or history), whatever sessions wait",
            ["kind"],
            registry=r,
        )
        self.store_calls = Counter(
            "gateway_store_calls_total", "JetStream direct-get requests sent (one may cover 1,024 streams)", registry=r
        )
        self.store_errors = Counter(
            "gateway_store_errors_total", "Retention look-ups that failed or timed out", registry=r
        )
        self.demand_errors = Counter(
            "gateway_demand_announce_errors_total", "Demand announcements (or parts) that failed to publish", registry=r
        )
        self.demand_streams = Gauge("gateway_demand_streams", "Streams in the last demand announcement", registry=r)
        self.demand_parts = Gauge(
            "gateway_demand_announce_parts", "NATS messages the last demand announcement took", registry=r
        )
        self.refused = Counter(
            "gateway_refused_connections_total",
            "Connections refused before a session began, by why (per_ip, unauthenticated)",
            ["why"],
            registry=r,
        )
        self.replayed = Counter(
            "gateway_replayed_events_total", "Events sent from retention (snapshots, history, resume)", registry=r
        )
