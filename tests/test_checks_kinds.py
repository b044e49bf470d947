"""The tcp and grpc kinds against real servers on loopback, and the config of every kind.

gRPC servers are grpcio's own ``grpc.aio`` server with its reference health
servicer, in the test process. grpcio is in the dev extra: a missing grpcio
fails these tests, it never skips them.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from healthmon.broker import STATUS_TOPIC
from healthmon.broker.memory import MemoryBroker
from healthmon.checker import Monitor
from healthmon.checks import check_for
from healthmon.checks.base import CheckSpec
from healthmon.checks.grpc import GrpcCheck
from healthmon.checks.tcp import TcpCheck
from healthmon.config import ConfigError, MonitorSettings, ServiceSettings, parse_settings
from healthmon.models import CheckResult, Status, StatusUpdate, decode

LONG_INTERVAL_MS = 10_000
# How soon a pushed change must show: far below the interval.
BOUND_S = 2.0
WAIT_S = 10.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def spec_for(url: str, interval_ms: int = LONG_INTERVAL_MS, **knobs: Any) -> CheckSpec:
    kind = url.partition("://")[0].removesuffix("s")
    service = ServiceSettings.model_validate({"name": "svc", "url": url, "kind": kind, **knobs})
    return CheckSpec.resolve(service, MonitorSettings(interval_ms=interval_ms))


def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def check_once(spec: CheckSpec) -> CheckResult:
    check = check_for(spec, session=None)  # type: ignore[arg-type]  # tcp and grpc need none
    try:
        return await check.run()
    finally:
        await check.aclose()


# tcp


async def test_tcp_up_then_refused() -> None:
    """A listening port is up; once the listener is closed it is down, connection refused."""
    accepted = asyncio.Event()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        accepted.set()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    spec = spec_for(f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    check = TcpCheck(spec)
    up = await check.run()
    await asyncio.wait_for(accepted.wait(), WAIT_S)
    server.close()
    await server.wait_closed()
    down = await check.run()
    await check.aclose()
    assert (up.status, up.reason) == (Status.UP, None)
    assert up.latency_ms is not None
    assert (down.status, down.reason) == (Status.DOWN, "connection refused")


async def test_tcp_slow_connect_is_degraded() -> None:
    """degraded_after_ms applies to tcp too: a connect slower than it is degraded."""
    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    spec = spec_for(f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    slow = CheckSpec(**{**{f: getattr(spec, f) for f in spec.__slots__}, "degraded_after_ms": 0})
    try:
        result = await check_once(slow)
    finally:
        server.close()
        await server.wait_closed()
    assert result.status is Status.DEGRADED
    assert result.reason is not None
    assert result.reason.startswith("slow answer:")


# grpc


class GrpcServer:
    """grpcio's aio server with the reference health servicer, on a loopback port."""

    def __init__(self, *, with_health: bool = True) -> None:
        self.server = grpc.aio.server()
        self.health = health.aio.HealthServicer()
        if with_health:
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = int(self.server.add_insecure_port("127.0.0.1:0"))

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    async def set(self, service: str, status: Any) -> None:
        await self.health.set(service, status)


@pytest.fixture
async def grpc_server() -> AsyncIterator[GrpcServer]:
    server = GrpcServer()
    await server.server.start()
    yield server
    await server.server.stop(None)


@contextlib.asynccontextmanager
async def monitoring(spec_url: str, **knobs: Any) -> AsyncIterator[asyncio.Queue[StatusUpdate]]:
    """A monitor of one service (10 s interval) and the queue of what it publishes."""
    kind = spec_url.partition("://")[0].removesuffix("s")
    service = ServiceSettings.model_validate(
        {"name": "svc", "url": spec_url, "kind": kind, **knobs}
    )
    broker = MemoryBroker()
    monitor = Monitor(
        [service], MonitorSettings(interval_ms=LONG_INTERVAL_MS, heartbeat_ms=60_000), broker
    )
    updates: asyncio.Queue[StatusUpdate] = asyncio.Queue()

    async def read(messages: AsyncIterator[bytes]) -> None:
        async for body in messages:
            updates.put_nowait(decode(StatusUpdate, body))

    async with broker.subscribe(STATUS_TOPIC) as messages:
        reader = asyncio.create_task(read(messages))
        await monitor.start()
        try:
            yield updates
        finally:
            await monitor.stop()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def next_status(
    updates: asyncio.Queue[StatusUpdate], timeout_s: float
) -> tuple[Status, str | None]:
    update = await asyncio.wait_for(updates.get(), timeout_s)
    return update.effective_status, update.reason


async def test_grpc_watch_changes_arrive_without_waiting_for_the_interval(
    grpc_server: GrpcServer,
) -> None:
    """NOT_SERVING and back to SERVING are published within 2 s, with a 10 s interval."""
    async with monitoring(grpc_server.url) as updates:
        assert await next_status(updates, WAIT_S) == (Status.UP, None)
        await grpc_server.set("", NOT_SERVING)
        assert await next_status(updates, BOUND_S) == (Status.DOWN, "NOT_SERVING")
        await grpc_server.set("", SERVING)
        assert await next_status(updates, BOUND_S) == (Status.UP, None)


async def test_grpc_server_gone_is_seen_at_once(grpc_server: GrpcServer) -> None:
    """A gRPC server that stops is shown down within 2 s: its Watch stream broke."""
    async with monitoring(grpc_server.url) as updates:
        assert await next_status(updates, WAIT_S) == (Status.UP, None)
        await grpc_server.server.stop(None)
        assert await next_status(updates, BOUND_S) == (Status.DOWN, "connection refused")


async def test_grpc_named_service(grpc_server: GrpcServer) -> None:
    """grpc_service names the service asked about; an unknown name is down, saying so."""
    await grpc_server.set("orders", SERVING)
    known = await check_once(spec_for(grpc_server.url, grpc_service="orders"))
    unknown = await check_once(spec_for(grpc_server.url, grpc_service="nope"))
    await grpc_server.set("orders", NOT_SERVING)
    not_serving = await check_once(spec_for(grpc_server.url, grpc_service="orders"))
    assert (known.status, known.reason) == (Status.UP, None)
    assert (unknown.status, unknown.reason) == (Status.DOWN, "unknown gRPC service 'nope'")
    assert (not_serving.status, not_serving.reason) == (Status.DOWN, "NOT_SERVING")


async def test_grpc_without_health_service_is_down() -> None:
    """A gRPC server that does not offer grpc.health.v1.Health is down with that reason."""
    bare = GrpcServer(with_health=False)
    await bare.server.start()
    try:
        result = await check_once(spec_for(bare.url))
    finally:
        await bare.server.stop(None)
    assert (result.status, result.reason) == (
        Status.DOWN,
        "no grpc.health.v1.Health service (UNIMPLEMENTED)",
    )


async def test_grpc_nothing_listening_is_refused() -> None:
    """A grpc:// address where nothing listens is down, connection refused."""
    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    result = await check_once(spec_for(f"grpc://127.0.0.1:{port}"))
    assert (result.status, result.reason) == (Status.DOWN, "connection refused")


async def test_grpc_metadata_is_sent(
    grpc_server: GrpcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers of a grpc service travel as gRPC metadata, names in lower case."""
    seen: list[tuple[tuple[str, str], ...]] = []

    class Recording(health.aio.HealthServicer):  # type: ignore[misc]
        async def Check(self, request: Any, context: Any) -> Any:
            seen.append(tuple(context.invocation_metadata()))
            return await super().Check(request, context)

    server = GrpcServer(with_health=False)
    health_pb2_grpc.add_HealthServicer_to_server(Recording(), server.server)
    await server.server.start()
    monkeypatch.setenv("HM_GRPC_TOKEN", "s3cret")
    try:
        check = GrpcCheck(
            spec_for(server.url, headers={"Authorization": "Bearer ${HM_GRPC_TOKEN}"})
        )
        result = await check.run()
        await check.aclose()
    finally:
        await server.server.stop(None)
    assert result.status is Status.UP
    assert ("authorization", "Bearer s3cret") in seen[0]


# config


GOOD = 'name = "svc"\n'


@pytest.mark.parametrize(
    ("table", "kind", "checked"),
    [
        ('url = "http://127.0.0.1:3001"\n', "http", "http://127.0.0.1:3001/health"),
        ('url = "tcp://db.internal:5432"\nkind = "tcp"\n', "tcp", "tcp://db.internal:5432"),
        ('url = "grpc://10.0.0.5:50051"\nkind = "grpc"\n', "grpc", "grpc://10.0.0.5:50051"),
        (
            'url = "grpcs://api.example.org:443"\nkind = "grpc"\ngrpc_service = "orders"\n',
            "grpc",
            "grpcs://api.example.org:443",
        ),
        ('url = "tcp://[::1]:6379"\nkind = "tcp"\nmock = false\n', "tcp", "tcp://[::1]:6379"),
    ],
)
def test_kinds_in_config(table: str, kind: str, checked: str) -> None:
    """Each kind takes its own URL; a file without kind keeps meaning http."""
    settings = parse_settings(f"[[services]]\n{GOOD}{table}", "config.toml")
    service = settings.services[0]
    assert (service.kind, service.health_url) == (kind, checked)


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('url = "tcp://db:5432"\n', 'services[0] "svc".url: a tcp:// URL needs kind = "tcp"'),
        ('url = "grpc://db:5432"\n', 'services[0] "svc".url: a grpc:// URL needs kind = "grpc"'),
        (
            'url = "http://db:80"\nkind = "tcp"\n',
            'services[0] "svc".url: a http:// URL needs kind = "http"',
        ),
        ('url = "tcp://db"\nkind = "tcp"\n', 'services[0] "svc".url: kind = "tcp" needs a port'),
        (
            'url = "tcp://db:1/x"\nkind = "tcp"\n',
            'services[0] "svc".url: kind = "tcp" takes no path',
        ),
        ('url = "tcp://db:0"\nkind = "tcp"\n', 'services[0] "svc".url: has an invalid port (0)'),
        ('url = "tcp://u:p@db:5"\nkind = "tcp"\n', 'services[0] "svc".url: must not carry a user'),
        ('url = "tcp://db:5?x=1"\nkind = "tcp"\n', 'services[0] "svc".url: must not carry a query'),
        ('url = "udp://db:5"\n', "(or tcp://, grpc://, grpcs:// for those kinds)"),
        (
            'url = "tcp://db:5"\nkind = "udp"\n',
            "services[0] \"svc\".kind: Input should be 'http', 'tcp'",
        ),
        ('url = "tcp://db:5"\nkind = "tcp"\nmethod = "HEAD"\n', 'method: not used by kind = "tcp"'),
        ('url = "tcp://db:5"\nkind = "tcp"\nmock = true\n', 'mock: not used by kind = "tcp"'),
        (
            'url = "tcp://db:5"\nkind = "tcp"\nheaders = { A = "b" }\n',
            'headers: not used by kind = "tcp"',
        ),
        (
            'url = "grpc://db:5"\nkind = "grpc"\nhealth_path = "/x"\n',
            'health_path: not used by kind = "grpc"',
        ),
        ('url = "http://db"\ngrpc_service = "x"\n', 'grpc_service: not used by kind = "http"'),
    ],
)
def test_kind_mistakes_name_the_field(table: str, error: str) -> None:
    """A URL, key or kind that does not fit stops the start with the field and the reason."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(f"[[services]]\n{GOOD}{table}", "config.toml")
    assert error in str(caught.value)


def test_grpc_without_the_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """kind = "grpc" without grpcio installed is refused at start, naming the extra."""
    monkeypatch.setitem(sys.modules, "grpc", None)
    with pytest.raises(ConfigError) as caught:
        parse_settings(f'[[services]]\n{GOOD}url = "grpc://h:1"\nkind = "grpc"\n', "config.toml")
    assert "pip install 'healthmon[grpc]'" in str(caught.value)


def test_healthmon_runs_without_grpc() -> None:
    """Without grpcio, healthmon still imports and checks http services (grpc is lazy)."""
    code = (
        "import sys; sys.modules['grpc'] = sys.modules['grpc_health'] = None\n"
        "import healthmon.app, healthmon.checker, healthmon.checks, healthmon.cli\n"
        "from healthmon.config import parse_settings\n"
        "parse_settings('[[services]]\\nname = \"a\"\\nurl = \"http://h:1\"\\n', 'x')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_grpc_watch_under_uvloop() -> None:
    """Under uvloop (healthmon's default loop) Watch pushes a change as soon as it happens."""
    import uvloop  # the dev extras install it: a missing uvloop fails, never skips

    async def scenario() -> list[tuple[Status, str | None]]:
        server = GrpcServer()
        await server.server.start()
        try:
            async with monitoring(server.url) as updates:
                first = await next_status(updates, WAIT_S)
                await server.set("", NOT_SERVING)
                return [first, await next_status(updates, BOUND_S)]
        finally:
            await server.server.stop(None)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(scenario()) == [(Status.UP, None), (Status.DOWN, "NOT_SERVING")]
