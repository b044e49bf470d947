"""How much each figure measures: the quick run and the full run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SCENARIOS = ("startup", "idle", "latency", "detect", "fanout", "scale", "convergence")


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
)
