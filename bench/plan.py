"""How much each figure measures: the quick run and the full run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SCENARIOS = (
    "startup",
    "idle",
    "latency",
    "detect",
    "fanout",
    "scale",
    "convergence",
    "history_size",
    "history_query",
    "history_scale",
    "status_badges",
    "status_live",
    "alerts",
    "alerts_hang",
)


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    loops: tuple[str, ...]
    startup_runs: int
    idle_s: float
    down_rounds: int
    # Hung rounds: each hangs one service, times its detection, then runs
    # ``down_rounds_per_hung`` rounds on another service while it hangs.
    hung_rounds: int
    down_rounds_per_hung: int
    fanout_sizes: tuple[int, ...]
    fanout_rounds: int
    scale_sizes: tuple[int, ...]
    scale_window_s: float
    # 1: every service on its own port, as if each were its own host.
    services_per_port: int
    # Convergence under chaos: truth changes, and monitor / ws off-on cycles.
    convergence_rounds: int
    convergence_cycles: int
    # kill -9, gRPC Watch and error (503) rounds, each (bench.detect).
    detect_rounds: int
    # History (bench.history): a simulated year of this many services through
    # the store, one batch per ``history_batch_minutes`` of simulated time.
    history_year_services: int
    history_batch_minutes: int
    # A year's retained content for this many services, read back: timed
    # runs of the 30-day uptime, of the history document (24 h, 90 d), of
    # Summaries.refresh() and of GET /api/services; flushes timed on it.
    history_query_services: int
    history_query_runs: int
    history_report_runs: int
    history_refresh_runs: int
    history_http_runs: int
    history_write_rounds: int
    # Lateness with history off and on: this many services, off/on pairs;
    # "on" writes a store already holding a year's rows (else a new one).
    history_scale_services: int
    history_scale_pairs: int
    history_scale_year: bool
    # The public status page (bench.status_page): badges served while this
    # many services are checked, for a window of this long; live pages.
    status_badge_services: int
    status_badge_window_s: float
    status_live_size: int
    status_live_rounds: int
    # Alerts (bench.alerts): kill -9 → webhook rounds (the storm runs a quarter as many).
    alert_rounds: int
    # A hanging channel: lateness at this many services (windows this long),
    # and one change reaching this many clients (blocks of this many down/up
    # rounds); this many answering/hanging pairs of each.
    hang_services: int
    hang_window_s: float
    hang_fanout_size: int
    hang_fanout_rounds: int
    hang_pairs: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


QUICK = Plan(
    name="quick",
    loops=("auto",),
    startup_runs=3,
    idle_s=10,
    down_rounds=12,
    hung_rounds=2,
    down_rounds_per_hung=6,
    fanout_sizes=(5000,),
    fanout_rounds=8,
    scale_sizes=(2000,),
    scale_window_s=5,
    services_per_port=1,
    convergence_rounds=16,
    convergence_cycles=2,
    detect_rounds=20,
    history_year_services=5,
    history_batch_minutes=60,
    history_query_services=100,
    history_query_runs=200,
    history_report_runs=50,
    history_refresh_runs=5,
    history_http_runs=30,
    history_write_rounds=5,
    history_scale_services=1000,
    history_scale_pairs=1,
    history_scale_year=False,
    status_badge_services=100,
    status_badge_window_s=5,
    status_live_size=2000,
    status_live_rounds=6,
    alert_rounds=12,
    hang_services=1000,
    hang_window_s=2.5,
    hang_fanout_size=1000,
    hang_fanout_rounds=4,
    hang_pairs=6,
)

FULL = Plan(
    name="full",
    loops=("asyncio", "uvloop"),
    startup_runs=10,
    idle_s=30,
    down_rounds=40,
    hung_rounds=8,
    down_rounds_per_hung=5,
    fanout_sizes=(1000, 5000, 10000),
    fanout_rounds=30,
    scale_sizes=(500, 1000, 1500, 2000, 3000, 4000, 6000, 8000),
    scale_window_s=15,
    services_per_port=1,
    convergence_rounds=60,
    convergence_cycles=6,
    detect_rounds=40,
    history_year_services=20,
    history_batch_minutes=60,
    history_query_services=1000,
    history_query_runs=1000,
    history_report_runs=200,
    history_refresh_runs=20,
    history_http_runs=200,
    history_write_rounds=20,
    # Not 3,000: this two-core machine no longer checks 2,000 services on time
    # at 500 ms, history or not (docs/benchmarks.md, issue 18's section), and a
    # ratio of two saturated loops says nothing about history.
    history_scale_services=1000,
    history_scale_pairs=3,
    history_scale_year=True,
    status_badge_services=500,
    status_badge_window_s=15,
    status_live_size=2000,
    status_live_rounds=30,
    alert_rounds=40,
    hang_services=1000,
    hang_window_s=3,
    hang_fanout_size=5000,
    hang_fanout_rounds=5,
    hang_pairs=20,
)
