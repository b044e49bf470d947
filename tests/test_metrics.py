"""GET /metrics in Prometheus text format, read by the library's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support import System


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_follow_the_system(system: System) -> None:
    """Statuses, checks, failures, latency, clients and broadcasts show in /metrics."""
    messages = await system.connected()
    await system.set_mode("billing", "down")
    await messages.update_for("billing")
    async with system.session.get(f"{system.base}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        values = samples(await response.text())
    assert values[("healthmon_service_up", (("service", "billing"),))] == 0
    assert values[("healthmon_service_up", (("service", "auth"),))] == 1
    assert values[("healthmon_service_status", (("service", "billing"), ("status", "down")))] == 1
    assert values[("healthmon_checks_total", (("service", "auth"),))] >= 1
    assert values[("healthmon_check_failures_total", (("service", "billing"),))] >= 1
    assert values[("healthmon_check_latency_seconds_count", (("service", "auth"),))] >= 1
    assert values[("healthmon_websocket_clients", ())] == 1
    assert values[("healthmon_broadcasts_total", ())] >= 1
    assert values[("healthmon_slow_clients_dropped_total", ())] == 0
    assert values[("healthmon_monitor_alive", ())] == 1
    assert values[("healthmon_service_stale", (("service", "billing"),))] == 0
    assert values[("healthmon_sse_clients", ())] == 0
    assert values[("healthmon_slow_sse_clients_dropped_total", ())] == 0
