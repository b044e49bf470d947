"""Prometheus metrics at ``GET /metrics``, one registry per app (no globals).

Counters and the latency histogram are updated as checks happen; gauges
(statuses, clients) are read from the board and the hub at scrape time, so
the hot paths pay nothing for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    # For typing only: sse imports the app's keys, which import this module.
    from healthmon.sse import EventStreams

from healthmon.hub import Hub
from healthmon.models import CheckResult, Status
from healthmon.status import StatusBoard

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.checks = Counter(
            "healthmon_checks", "Checks performed", ["service"], registry=self.registry
        )
        self.failures = Counter(
            "healthmon_check_failures",
            "Checks whose result was down",
            ["service"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "healthmon_check_latency_seconds",
            "Time from sending a check to its result",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.history_errors = Counter(
            "healthmon_history_errors",
            "History store failures, by kind (locked, disk_full, corrupt, unusable, …)",
            ["kind"],
            registry=self.registry,
        )

        self.alerts = Counter(
            "healthmon_alerts",
            "Alert deliveries by channel and outcome (sent, retrying, failed, held)",
            ["channel", "outcome"],
            registry=self.registry,
        )

    def alert(self, channel: str, outcome: str) -> None:
        self.alerts.labels(channel, outcome).inc()

    def history_error(self, kind: str) -> None:
        self.history_errors.labels(kind).inc()

    def observe(self, result: CheckResult) -> None:
        self.checks.labels(result.service).inc()
        if result.status is Status.DOWN:
            self.failures.labels(result.service).inc()
        if result.latency_ms is not None:
            self.latency.labels(result.service).observe(result.latency_ms / 1000)

    def forget(self, service: str) -> None:
        """A service removed by a reload leaves the metrics too."""
        for metric in (self.checks, self.failures, self.latency):
            with contextlib.suppress(KeyError):
                metric.remove(service)

    def watch(
        self, board: StatusBoard | None, hub: Hub | None, events: EventStreams | None = None
    ) -> None:
        self.registry.register(_StateCollector(board, hub, events))

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


class _StateCollector(Collector):
    def __init__(
        self, board: StatusBoard | None, hub: Hub | None, events: EventStreams | None
    ) -> None:
        self.board = board
        self.hub = hub
        self.events = events

    def collect(self) -> Iterator[Metric]:
        if self.board is not None:
            up = GaugeMetricFamily(
                "healthmon_service_up", "1 when the service is up or degraded", labels=["service"]
            )
            status = GaugeMetricFamily(
                "healthmon_service_status",
                "1 for the service's current status",
                labels=["service", "status"],
            )
            stale = GaugeMetricFamily(
                "healthmon_service_stale",
                "1 when the service's latest check is older than 2 x (interval + timeout)",
                labels=["service"],
            )
            for name in self.board.names:
                state = self.board.state(name)
                assert state is not None
                up.add_metric([name], 1.0 if state.up else 0.0)
                stale.add_metric([name], 1.0 if state.stale else 0.0)
                for value in Status:
                    status.add_metric([name, value.value], 1.0 if state.status is value else 0.0)
            yield up
            yield status
            yield stale
            yield GaugeMetricFamily(
                "healthmon_monitor_alive",
                "1 while a monitor's heartbeats arrive",
                value=1.0 if self.board.monitor_alive else 0.0,
            )
        if self.hub is not None:
            yield GaugeMetricFamily(
                "healthmon_websocket_clients",
                "Connected WebSocket clients",
                value=len(self.hub.clients),
            )
            yield CounterMetricFamily(
                "healthmon_broadcasts",
                "Messages broadcast to WebSocket clients",
                value=self.hub.broadcasts,
            )
            yield CounterMetricFamily(
                "healthmon_slow_clients_dropped",
                "WebSocket clients dropped for falling too far behind",
                value=self.hub.dropped,
            )
        if self.events is not None:
            yield GaugeMetricFamily(
                "healthmon_sse_clients",
                "Connected Server-Sent Events streams",
                value=len(self.events),
            )
            yield CounterMetricFamily(
                "healthmon_slow_sse_clients_dropped",
                "Event streams dropped for falling too far behind",
                value=self.events.dropped,
            )
