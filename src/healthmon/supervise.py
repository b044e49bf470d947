"""Supervised long-lived tasks: none of them may die silently.

A bare ``create_task`` whose result nobody reads is how a check loop ends
with nothing logged and its card frozen. Every long task here runs under
``supervise``: an unexpected exception is one ``task.crashed`` event with its
traceback, and the task starts again after a backoff (0.1 s, doubling to
5 s; back to 0.1 s once a run lasted a minute). Cancellation ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
# A run that lasted this long was healthy: the next crash starts the backoff afresh.
HEALTHY_RUN_S = 60.0


async def _run(name: str, factory: Callable[[], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    backoff = FIRST_BACKOFF_S
    while True:
        started = loop.time()
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task.crashed", task=name, restart_in_s=backoff)
        else:
            # A long task that returns has stopped doing its job all the same.
            log.error("task.crashed", task=name, error="returned", restart_in_s=backoff)
        if loop.time() - started >= HEALTHY_RUN_S:
            backoff = FIRST_BACKOFF_S
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_S)


def supervise(name: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    """Run ``factory()`` as a task that is restarted, logged, whenever it fails."""
    return asyncio.create_task(_run(name, factory), name=name)
