"""Bounded history per service: uptime over the last hour and recent latencies.

Uptime is weighted by time from status changes alone (exact, and known to
every process that sees the changes); latencies are sampled from monitor
heartbeats, about one a second.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_MS = 3_600_000
LATENCY_SAMPLES = 60
# Enough change events for a service flapping every few seconds for an hour.
MAX_CHANGES = 2048


@dataclass(slots=True)
class ServiceHistory:
    latencies: deque[float | None] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    # (time, up) at each change, oldest first; the first may predate the window.
    changes: deque[tuple[int, bool]] = field(default_factory=lambda: deque(maxlen=MAX_CHANGES))

    def change(self, ts: int, up: bool) -> None:
        if self.changes and self.changes[-1][0] > ts:
            return
        self.changes.append((ts, up))

    def sample(self, latency_ms: float | None) -> None:
        self.latencies.append(latency_ms)

    def known_ms(self, now: int) -> int:
        """How much of the last hour the uptime covers (less while the board is young)."""
        if not self.changes:
            return 0
        return max(0, now - max(self.changes[0][0], now - WINDOW_MS))

    def uptime(self, now: int) -> float | None:
        """Percent of the known part of the last hour spent up (or degraded)."""
        start = now - WINDOW_MS
        # Keep the last change before the window: it says how the window began.
        while len(self.changes) > 1 and self.changes[1][0] <= start:
            self.changes.popleft()
        if not self.changes:
            return None
        up_ms = known_ms = 0
        for index, (ts, up) in enumerate(self.changes):
            begin = max(ts, start)
            end = self.changes[index + 1][0] if index + 1 < len(self.changes) else now
            span = max(0, end - begin)
            known_ms += span
            up_ms += span if up else 0
        if known_ms == 0:
            return 100.0 if self.changes[-1][1] else 0.0
        return round(100 * up_ms / known_ms, 2)

    def to_wire(self, now: int) -> dict[str, object]:
        return {
            "uptime_1h": self.uptime(now),
            # The window that figure covers, so a page can carry it on exactly.
            "known_ms": self.known_ms(now),
            "latency": list(self.latencies),
        }
