"""``python -m bench [--quick]``: run the plan, print the table, write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import random
import signal
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path

import aiohttp

from bench import machine
from bench.alerts import alert_figures, hang_figures
from bench.convergence import convergence_figures
from bench.detect import detect_figures
from bench.fanout import fanout_figures
from bench.figures import Figure
from bench.history import QueryBench, ScaleBench
from bench.history import size_figures as history_size_figures
from bench.idle import idle_figures, startup_figures
from bench.latency import down_rounds, hung_rounds, latency_figures
from bench.plan import FULL, QUICK, SCENARIOS, Plan
from bench.procfs import raise_open_files_limit
from bench.report import table, write_json
from bench.scale import scale_figures
from bench.server import UP, BenchError, default_spec, running_server, wait_ready, wait_until
from bench.status_page import badge_figures, live_page_figures
from bench.watcher import watching

RESULTS = Path(__file__).resolve().parent / "results"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about a minute, asyncio only")
    parser.add_argument(
        "--loops",
        help="comma list of asyncio, uvloop, auto (healthmon's default: uvloop when installed); "
        "default: auto quick, both full",
    )
    parser.add_argument(
        "--only", help=f"comma list of scenarios to run (default: all of {', '.join(SCENARIOS)})"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--seed", type=int, default=None, help="seed for the random phases")
    return parser


class Runner:
    def __init__(self, plan: Plan, scenarios: Sequence[str], seed: int) -> None:
        self.plan = plan
        self.scenarios = frozenset(scenarios)
        self.seed = seed
        self.rng = random.Random(seed)
        self.workdir = RESULTS / "run"
        self.figures: list[Figure] = []
        self.failures: list[str] = []
        # Built once, at first use, and read by every loop's server.
        self.history_query = QueryBench(
            plan.history_query_services, self.workdir, self._rng("history_query")
        )
        self.history_scale = ScaleBench(
            self.workdir, self._rng("history_scale"), year=plan.history_scale_year
        )

    def _rng(self, scenario: str) -> random.Random:
        """The scenario's own stream: the same draws whichever others run."""
        return random.Random(f"{self.seed}:{scenario}")

    async def run(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            async with aiohttp.ClientSession() as session:
                for loop in self.plan.loops:
                    for name, step in self._steps(session, loop):
                        try:
                            self._add(*await step)
                        except BenchError as exc:
                            # One scenario failing says something; the others still run.
                            self.failures.append(f"{name} ({loop}): {exc}")
                            self._add(
                                Figure(name, loop, "", "runs", False, detail={"error": str(exc)})
                            )
        finally:
            self.history_query.remove()
            self.history_scale.remove()

    def _steps(
        self, session: aiohttp.ClientSession, loop: str
    ) -> list[tuple[str, Coroutine[None, None, list[Figure]]]]:
        plan, steps = self.plan, []
        if "startup" in self.scenarios:
            steps.append(
                (
                    "startup",
                    startup_figures(session, default_spec(), loop, plan.startup_runs, self.workdir),
                )
            )
        if self.scenarios & {"idle", "latency"}:
            steps.append(("idle and latency", self._default_server(session, loop)))
        if "detect" in self.scenarios:
            steps.append(
                (
                    "detect",
                    detect_figures(session, loop, plan.detect_rounds, self.workdir, self.rng),
                )
            )
        if "fanout" in self.scenarios:
            steps += [
                (
                    f"fan-out {size}",
                    fanout_figures(
                        session, default_spec(), loop, size, plan.fanout_rounds, self.workdir
                    ),
                )
                for size in plan.fanout_sizes
            ]
        if "scale" in self.scenarios:
            steps.append(
                (
                    "scale",
                    scale_figures(
                        session,
                        loop,
                        plan.scale_sizes,
                        plan.scale_window_s,
                        plan.services_per_port,
                        self.workdir,
                    ),
                )
            )
        steps += self._history_steps(session, loop)
        if "status_badges" in self.scenarios:
            steps.append(
                (
                    "status_badges",
                    badge_figures(
                        session,
                        loop,
                        plan.status_badge_services,
                        plan.status_badge_window_s,
                        self.workdir,
                    ),
                )
            )
        if "status_live" in self.scenarios:
            steps.append(
                (
                    "status_live",
                    live_page_figures(
                        session, loop, plan.status_live_size, plan.status_live_rounds, self.workdir
                    ),
                )
            )
        if "alerts" in self.scenarios:
            steps.append(
                (
                    "alerts",
                    alert_figures(
                        session, loop, plan.alert_rounds, self.workdir, self._rng("alerts")
                    ),
                )
            )
        if "alerts_hang" in self.scenarios:
            steps.append(
                (
                    "alerts, a channel hanging",
                    hang_figures(session, loop, plan, self.workdir, self._rng("alerts_hang")),
                )
            )
        if "convergence" in self.scenarios:
            steps.append(
                (
                    "convergence",
                    convergence_figures(
                        session,
                        loop,
                        plan.convergence_rounds,
                        plan.convergence_cycles,
                        self.workdir,
                        self.rng,
                    ),
                )
            )
        return steps

    def _history_steps(
        self, session: aiohttp.ClientSession, loop: str
    ) -> list[tuple[str, Coroutine[None, None, list[Figure]]]]:
        plan, steps = self.plan, []
        # The store's own figures do not depend on the server's loop: measured once.
        first = loop == plan.loops[0]
        if "history_size" in self.scenarios and first:
            steps.append(
                (
                    "history_size",
                    history_size_figures(
                        plan.history_year_services,
                        plan.history_batch_minutes,
                        self.workdir,
                        self._rng("history_size"),
                    ),
                )
            )
        if "history_query" in self.scenarios:
            steps.append(
                (
                    "history_query",
                    self.history_query.figures(
                        session,
                        loop,
                        runs=plan.history_query_runs,
                        report_runs=plan.history_report_runs,
                        refresh_runs=plan.history_refresh_runs,
                        http_runs=plan.history_http_runs,
                        write_rounds=plan.history_write_rounds,
                    ),
                )
            )
        if "history_scale" in self.scenarios:
            steps.append(
                (
                    "history_scale",
                    self.history_scale.figures(
                        session,
                        loop,
                        plan.history_scale_services,
                        plan.history_scale_pairs,
                        plan.scale_window_s,
                        plan.services_per_port,
                    ),
                )
            )
        return steps

    async def _default_server(self, session: aiohttp.ClientSession, loop: str) -> list[Figure]:
        """Idle costs first, while nobody talks to it; then the latency rounds."""
        plan, spec = self.plan, default_spec()
        async with running_server(spec, loop, self.workdir) as server:
            await wait_ready(session, server)
            await wait_until(session, spec, statuses=UP)
            figures = []
            if "idle" in self.scenarios:
                figures += await idle_figures(server, loop, plan.idle_s)
            if "latency" not in self.scenarios:
                return figures
            hung, switched = spec.names[0], spec.names[1]
            async with watching(session, spec.ws_url) as watcher:
                plain = await down_rounds(
                    session, spec, watcher, switched, plan.down_rounds, self.rng
                )
                detection, while_hung = await hung_rounds(
                    session,
                    spec,
                    watcher,
                    hung=hung,
                    switched=switched,
                    rounds=plan.hung_rounds,
                    per_round=plan.down_rounds_per_hung,
                    rng=self.rng,
                )
            return figures + latency_figures(loop, spec, plain, detection, while_hung)

    def _add(self, *figures: Figure) -> None:
        for figure in figures:
            self.figures.append(figure)
            print(table([figure]).splitlines()[-1], flush=True)


async def _run_cancellable(runner: Runner) -> None:
    # SIGTERM stops the run like Ctrl-C does: every process we started is stopped.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await runner.run()


def _resolve(loop: str) -> str:
    """The loop healthmon's ``--loop auto`` picks here, named."""
    if loop != "auto":
        return loop
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    loops = args.loops.split(",") if args.loops else plan.loops
    plan = dataclasses.replace(plan, loops=tuple(_resolve(loop) for loop in loops))
    scenarios = args.only.split(",") if args.only else SCENARIOS
    unknown = set(scenarios) - set(SCENARIOS) or set(plan.loops) - {"asyncio", "uvloop"}
    if unknown:
        print(f"bench: unknown scenario or loop: {', '.join(sorted(unknown))}")
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    raise_open_files_limit()
    host = machine.describe()
    runner = Runner(plan, scenarios, seed)
    started = time.monotonic()
    try:
        asyncio.run(_run_cancellable(runner))
    except (KeyboardInterrupt, asyncio.CancelledError):
        runner.failures.append("interrupted")
    elapsed = time.monotonic() - started
    print()
    print(table(runner.figures))
    print(
        f"\n{plan.name} run, {elapsed:.0f} s; {host['cores']} cores, {host['cpu']}, "
        f"Python {host['python']}; loops: {', '.join(plan.loops)}; seed {seed}"
    )
    run = {
        "plan": plan.as_dict(),
        "scenarios": list(scenarios),
        "seed": seed,
        "machine": host,
        "elapsed_s": round(elapsed, 1),
        "failures": runner.failures,
    }
    write_json(args.output, run, runner.figures)
    print(f"results: {args.output}")
    for failure in runner.failures:
        print(f"bench: failed: {failure}")
    if runner.failures:
        return 1
    return 0
