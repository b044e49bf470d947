"""The tcp kind: the service is up when a TCP connection to it opens.

For databases, brokers and anything else that speaks no HTTP. The connection
is closed at once (nothing is sent), so the check costs the service one
accept and does not hold one of its connection slots.
"""

from __future__ import annotations

import asyncio
import time

import structlog
import yarl

from healthmon.checks.base import CheckResult, CheckSpec, Verdict, Wake, result_of
from healthmon.health import no_answer
from healthmon.models import Status
from healthmon.probe import connect_failure

log = structlog.get_logger(__name__)


class TcpCheck:
    """Connect to ``tcp://host:port`` and close again."""

    def __init__(self, spec: CheckSpec) -> None:
        self.spec = spec
        self.wake = Wake()
        target = yarl.URL(spec.url)
        # Checked by config: a tcp:// URL with a host and a port.
        self._host = target.raw_host or ""
        self._port = target.port or 0

    async def run(self) -> CheckResult:
        started = time.perf_counter()
        verdict = await self._connect()
        return result_of(self.spec, verdict, (time.perf_counter() - started) * 1000)

    async def _connect(self) -> Verdict:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.spec.timeout_ms / 1000):
                transport, _ = await loop.create_connection(
                    asyncio.Protocol, self._host, self._port
                )
        except TimeoutError:
            return no_answer(f"no connection within {self.spec.timeout_ms} ms")
        except OSError as exc:
            return no_answer(connect_failure(exc))
        except Exception as exc:  # CancelledError is no Exception: cancelling still cancels
            log.error("check.failed", service=self.spec.name, exc_info=True)
            return Verdict(Status.DOWN, f"check failed: {type(exc).__name__}: {exc}"[:200])
        transport.close()
        return Verdict(Status.UP, None)

    async def aclose(self) -> None:
        """Nothing is kept between checks."""
