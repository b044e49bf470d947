"""The grpc kind: the standard ``grpc.health.v1.Health`` service.

``Check`` is called every interval, like any check. Beside it, one ``Watch``
stream per service stays open: the server sends each change of its status as
it happens, and the change goes to the loop at once (no request, no polling).
A Watch stream that breaks after it worked means the server went away or
restarted: the loop checks again at once, as for an http service whose idle
connection closed. A server without ``Watch`` (UNIMPLEMENTED) is checked on
the interval only.

Imported only when a grpc service is configured: grpcio is the optional
``grpc`` extra, and the config refuses kind = "grpc" without it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import structlog
import yarl
from grpc_health.v1 import health_pb2, health_pb2_grpc

from healthmon.checks.base import CheckResult, CheckSpec, Verdict, Wake, result_of
from healthmon.health import no_answer
from healthmon.models import Status
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class GrpcCheck:
    """``Check`` every interval over one channel, and ``Watch`` pushing changes between."""

    def __init__(self, spec: CheckSpec) -> None:
        self.spec = spec
        self.wake = Wake()
        target = yarl.URL(spec.url)
        # Checked by config: grpc:// or grpcs:// with a host and a port.
        self._target = f"{target.host_subcomponent}:{target.port}"
        self._tls = target.scheme == "grpcs"
        self._request = health_pb2.HealthCheckRequest(service=spec.grpc_service)
        # gRPC metadata keys are lower case.
        self._metadata = tuple((name.lower(), value) for name, value in spec.headers)
        self._channel: Any = None
        self._stub: Any = None
        self._watcher: asyncio.Task[None] | None = None
        # The verdict last given to the loop, and a newer one Watch brought.
        self._last: Verdict | None = None
        self._pushed: Verdict | None = None

    async def run(self) -> CheckResult:
        if self._stub is None:
            self._open()
        pushed, self._pushed = self._pushed, None
        if pushed is not None:
            # The server said so itself: no request was made, so no latency.
            self._last = pushed
            return result_of(self.spec, pushed, None)
        started = time.perf_counter()
        verdict = await self._check()
        latency_ms = (time.perf_counter() - started) * 1000
        self._last = verdict
        return result_of(self.spec, verdict, latency_ms)

    async def aclose(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    def _open(self) -> None:
        # Reconnect at the check's pace: gRPC's own backoff grows to two minutes,
        # which would hide a service's return for that long.
        backoff = min(self.spec.interval_ms, 1000)
        options = [
            ("grpc.initial_reconnect_backoff_ms", backoff),
            ("grpc.min_reconnect_backoff_ms", backoff),
            ("grpc.max_reconnect_backoff_ms", max(backoff, self.spec.interval_ms)),
        ]
        if self._tls:
            credentials = grpc.ssl_channel_credentials()
            self._channel = grpc.aio.secure_channel(self._target, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(self._target, options=options)
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self._watcher = supervise(f"watch:{self.spec.name}", self._watch)

    async def _check(self) -> Verdict:
        """One ``Check`` call; every exception but cancellation becomes a DOWN verdict."""
        timeout = self.spec.timeout_ms / 1000
        try:
            async with asyncio.timeout(timeout):
                reply = await self._stub.Check(
                    self._request, timeout=timeout, metadata=self._metadata
                )
        except TimeoutError:
            return no_answer(f"no answer within {self.spec.timeout_ms} ms")
        except grpc.aio.AioRpcError as exc:
            return self._failed(exc)
        except Exception as exc:  # CancelledError is no Exception: cancelling still cancels
            log.error("check.failed", service=self.spec.name, exc_info=True)
            return Verdict(Status.DOWN, f"check failed: {type(exc).__name__}: {exc}"[:200])
        return self._serving(int(reply.status))

    def _serving(self, status: int) -> Verdict:
        if status == _SERVING:
            return Verdict(Status.UP, None)
        if status == _NOT_SERVING:
            return Verdict(Status.DOWN, "NOT_SERVING")
        if status == _SERVICE_UNKNOWN:
            return Verdict(Status.DOWN, f"unknown gRPC service {self.spec.grpc_service!r}")
        # UNKNOWN: the server has not said; as Actuator's UNKNOWN, degraded.
        return Verdict(Status.DEGRADED, "health status UNKNOWN")

    def _failed(self, exc: grpc.aio.AioRpcError) -> Verdict:
        code, details = exc.code(), str(exc.details() or "")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return no_answer(f"no answer within {self.spec.timeout_ms} ms")
        if code == grpc.StatusCode.UNAVAILABLE and "connection refused" in details.lower():
            return no_answer("connection refused")
        if code == grpc.StatusCode.NOT_FOUND:
            return Verdict(Status.DOWN, f"unknown gRPC service {self.spec.grpc_service!r}")
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return Verdict(Status.DOWN, "no grpc.health.v1.Health service (UNIMPLEMENTED)")
        return Verdict(Status.DOWN, f"gRPC {code.name}: {details}"[:200])

    async def _watch(self) -> None:
        """Follow the server's ``Watch`` stream for as long as the check lives."""
        loop = asyncio.get_running_loop()
        interval = self.spec.interval_ms / 1000
        while True:
            started = loop.time()
            delivered = False
            # wait_for_ready: while the server is away the call waits for it
            # (gRPC reconnects at the check's pace) instead of failing at once.
            call = self._stub.Watch(self._request, metadata=self._metadata, wait_for_ready=True)
            try:
                async for reply in call:
                    delivered = True
                    self._watched(self._serving(int(reply.status)))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log.info("grpc.no_watch", service=self.spec.name)
                    return
            if delivered:
                # It worked and broke: the server went away or restarted.
                self.wake.recheck()
            # A stream that keeps ending is opened again at most once an interval.
            await asyncio.sleep(max(0.0, started + interval - loop.time()))

    def _watched(self, verdict: Verdict) -> None:
        if self._pushed is None and verdict == self._last:
            return
        self._pushed = verdict
        self.wake.push()
