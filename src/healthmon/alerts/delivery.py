"""Sending what the outbox holds: one queue and one task per channel, retries with jitter.

A slow, failing or hanging channel delays only its own queue: each try is
bounded by the channel's timeout, checks and pushes never wait on it, and
other channels have their own task. A failed try is tried again after an
exponential backoff with full jitter (a random wait up to the doubled bound,
so many deliverers do not retry in step); a message still unsent after
``max_age`` is given up and reported failed. Every outcome is written to the
outbox, logged once (``alert.sent`` / ``alert.retrying`` / ``alert.failed``)
and counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog

from healthmon.alerts.channels import Answer, Channel, body_text, channel_for, message_from_json
from healthmon.alerts.outbox import Outbox
from healthmon.alerts.rules import Message
from healthmon.alerts.settings import ChannelSettings
from healthmon.models import now_ms
from healthmon.store.base import AlertRow
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0


def backoff_s(attempts: int, rng: random.Random, base_s: float = BACKOFF_BASE_S) -> float:
    """Full jitter: uniform in [0, min(cap, base · 2^attempts)] (AWS architecture blog)."""
    return rng.uniform(0, min(BACKOFF_CAP_S, base_s * 2**attempts))


Outcome = Callable[[str, str], None]


class Delivery:
    """Owns a task per channel; ``submit`` keeps a message, then queues it."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, Channel] | None = None,
        *,
        max_age_ms: int = 3_600_000,
        rng: random.Random | None = None,
        backoff_base_s: float = BACKOFF_BASE_S,
    ) -> None:
        self.outbox = outbox
        self.channels = dict(channels or {})
        self.max_age_ms = max_age_ms
        self._settings: dict[str, ChannelSettings] = {}
        self.rng = rng or random.Random()
        self.backoff_base_s = backoff_base_s
        self._queues: dict[str, asyncio.Queue[AlertRow]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._closing: set[asyncio.Future[None]] = set()
        self._started = False
        # Keys queued or waiting for a retry here: a resume does not queue them twice.
        self._known: set[str] = set()
        # Told of every outcome (channel, "sent" | "retrying" | "failed"): metrics.
        self.on_outcome: list[Outcome] = []

    def set_channels(self, settings: Iterable[ChannelSettings], max_age_ms: int) -> None:
        """Use these channels from now on; an unchanged one keeps its connections."""
        self.max_age_ms = max_age_ms
        wanted = {c.name: c for c in settings}
        for name, channel in list(self.channels.items()):
            if self._settings.get(name) != wanted.get(name):
                del self.channels[name]
                closing = asyncio.ensure_future(channel.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        for name, channel_settings in wanted.items():
            if name not in self.channels:
                self.channels[name] = channel_for(channel_settings)
        self._settings = wanted
        if self._started:
            for name in self.channels:
                self._worker(name)

    def _timeout_s(self, channel: Channel) -> float:
        settings = self._settings.get(channel.name)
        # A second more than the channel's own bound, which is then the one that fires.
        return (settings.timeout if settings else 10_000) / 1000 + 1

    def start(self) -> None:
        self._started = True
        for name in self.channels:
            self._worker(name)

    def _worker(self, name: str) -> asyncio.Queue[AlertRow]:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = asyncio.Queue()
        if name not in self._tasks:
            self._tasks[name] = supervise(f"alerts:{name}", lambda: self._run(name, queue))
        return queue

    async def submit(self, messages: Sequence[Message]) -> None:
        """Keep ``messages`` in the outbox first, then send them."""
        if not messages:
            return
        now = now_ms()
        rows = [
            AlertRow(
                m.key,
                m.channel,
                m.created_ms,
                "pending",
                0,
                now,
                now,
                body_text(m),
            )
            for m in messages
        ]
        await self.outbox.add(rows)
        for row in rows:
            self._queue(row)

    async def resume(self) -> int:
        """Queue what the outbox holds unfinished (a deliverer before this one left it)."""
        rows = [r for r in await self.outbox.open() if r.key not in self._known]
        for row in rows:
            self._queue(row, delay_s=max(0.0, (row.next_ms - now_ms()) / 1000))
        return len(rows)

    def _queue(self, row: AlertRow, delay_s: float = 0.0) -> None:
        if row.channel not in self.channels:
            log.warning("alert.unknown_channel", channel=row.channel, key=row.key)
            return
        self._known.add(row.key)
        queue = self._worker(row.channel)
        if delay_s <= 0:
            queue.put_nowait(row)
            return
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._timers.discard(handle)
            queue.put_nowait(row)

        handle = loop.call_later(delay_s, due)
        self._timers.add(handle)

    async def _run(self, name: str, queue: asyncio.Queue[AlertRow]) -> None:
        while True:
            row = await queue.get()
            channel = self.channels.get(name)
            if channel is None:
                continue
            await self._try(channel, row)

    async def _try(self, channel: Channel, row: AlertRow) -> None:
        started = time.monotonic()
        message = message_from_json(row.body)
        try:
            # The channel bounds its own try; this bounds a channel that does not.
            # (asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel.)
            async with asyncio.timeout(self._timeout_s(channel)):
                answer = await channel.send(message)
        except TimeoutError:
            answer = Answer(False, f"no answer in {self._timeout_s(channel):g} s")
        took_ms = round((time.monotonic() - started) * 1000, 1)
        now = now_ms()
        attempts = row.attempts + 1
        if answer.ok:
            done = dataclasses.replace(
                row, state="sent", attempts=attempts, updated_ms=now, answer=answer.detail
            )
            self._finish(done, "alert.sent", took_ms, answer, message.title)
        elif now - row.created_ms >= self.max_age_ms:
            done = dataclasses.replace(
                row, state="failed", attempts=attempts, updated_ms=now, answer=answer.detail
            )
            self._finish(done, "alert.failed", took_ms, answer, message.title)
        else:
            wait = backoff_s(attempts, self.rng, self.backoff_base_s)
            wait = min(wait, max(0.0, (row.created_ms + self.max_age_ms - now) / 1000))
            done = dataclasses.replace(
                row,
                state="retrying",
                attempts=attempts,
                next_ms=now + round(wait * 1000),
                updated_ms=now,
                answer=answer.detail,
            )
            log.warning(
                "alert.retrying",
                channel=row.channel,
                title=message.title,
                key=row.key,
                attempt=attempts,
                in_s=round(wait, 2),
                answer=answer.detail,
            )
            self.tell(row.channel, "retrying")
            self._queue(done, delay_s=wait)
        await self.outbox.mark(done)

    def _finish(
        self, row: AlertRow, event: str, took_ms: float, answer: Answer, title: str
    ) -> None:
        self._known.discard(row.key)
        outcome = row.state
        report = log.info if answer.ok else log.error
        report(
            event,
            channel=row.channel,
            title=title,
            key=row.key,
            attempt=row.attempts,
            took_ms=took_ms,
            answer=answer.detail,
        )
        self.tell(row.channel, outcome)

    def tell(self, channel: str, outcome: str) -> None:
        for tell in self.on_outcome:
            tell(channel, outcome)

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.aclose() for c in self.channels.values()), *self._closing)
