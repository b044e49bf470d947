"""Alerts in a running process: the engine's loop, its delivery, and who may deliver.

The engine runs in the monitor role, fed by the monitor's results (the
state each leaves shown). Of several monitors sharing a history store only
the one holding the store's writer lead (the recorder's lease: a lock file
beside SQLite, an advisory lock in PostgreSQL) decides and delivers, so one
change is told once (while no store is open, each delivers: better twice
than never). A monitor that takes the lead first reads what was
already announced from the outbox (so it neither repeats a "down" nor
forgets a recovery), then resumes the messages left unsent, then decides.
Without history every monitor delivers from an in-memory outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog
from aiohttp import web

from healthmon.alerts.channels import body_text, message_from_json
from healthmon.alerts.delivery import Delivery
from healthmon.alerts.maintenance import Maintenance, Silences
from healthmon.alerts.outbox import MemoryOutbox, Outbox, StoreOutbox
from healthmon.alerts.rules import Engine, Held, Message, ServiceInfo, resolve_policies
from healthmon.config import Settings
from healthmon.keys import ARCHIVE, CONFIG, METRICS, PROCESS_ROLES, RECORDER
from healthmon.models import CheckResult, Status, StatusUpdate, now_ms
from healthmon.status import stale_after_ms
from healthmon.store.base import ALERT_LOG_KEEP_MS, AlertRow, Silence
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

# The alert log's channel for what a window or silence held (sent nowhere).
HELD_CHANNEL = "-"
# The longest a tick waits: how soon a non-leader notices it leads now.
REFRESH_S = 1.0
# How much of the alert log a new leader reads to learn what was announced.
RESTORE_ROWS = 2_000
# The alert log keeps finished messages this long (the store prunes them hourly).
LOG_KEEP_MS = ALERT_LOG_KEEP_MS


def service_infos(settings: Settings) -> list[ServiceInfo]:
    return [
        ServiceInfo(s.name, s.depends_on, getattr(s, "group", None), s.tags)
        for s in settings.services
    ]


def announced_from(rows: Iterable[AlertRow]) -> dict[str, Status]:
    """What the messages in ``rows`` left announced, per service (oldest row first)."""
    announced: dict[str, Status] = {}
    for row in sorted(rows, key=lambda r: (r.created_ms, r.key)):
        if row.state == "held":
            continue
        for item in message_from_json(row.body).items:
            for name in (item.service, *item.affected):
                if item.kind == "recovered":
                    announced.pop(name, None)
                elif item.kind in ("down", "degraded", "unknown"):
                    announced[name] = item.status
    return announced


@dataclass(frozen=True, slots=True)
class _Seen:
    at: int
    status: Status


class Alerter:
    """Feeds the engine, ticks it, and hands its messages to delivery while leading."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        silences: Silences,
        *,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.outbox = outbox
        self.silences = silences
        self.leading = leading
        self.maintenance = Maintenance(settings.maintenance)
        self.engine = Engine(
            service_infos(settings),
            resolve_policies(service_infos(settings), settings.alerts),
            digest_ms=settings.alerts.digest,
            rate_limits={c.name: c.rate_limit for c in settings.channels},
            key_prefix=uuid.uuid4().hex[:12],
            mute=self.maintenance,
        )
        self.delivery = Delivery(outbox)
        self.delivery.set_channels(settings.channels, settings.alerts.max_age)
        self._stale_after = {s.name: stale_after_ms(s, settings.monitor) for s in settings.services}
        self._seen: dict[str, _Seen] = {}
        self._wake = asyncio.Event()
        self.led = False
        silences.on_change.append(self.silenced)

    def set_settings(self, settings: Settings) -> None:
        """Follow a reload (synchronously: part of the reloader's one step)."""
        infos = service_infos(settings)
        self.engine.configure(
            infos,
            resolve_policies(infos, settings.alerts),
            digest_ms=settings.alerts.digest,
            rate_limits={c.name: c.rate_limit for c in settings.channels},
        )
        self.maintenance.windows = tuple(settings.maintenance)
        self._stale_after = {s.name: stale_after_ms(s, settings.monitor) for s in settings.services}
        self.delivery.set_channels(settings.channels, settings.alerts.max_age)
        self._wake.set()

    def observe(self, result: CheckResult, shown: StatusUpdate) -> None:
        """A monitor recorder: every result, with the state it leaves shown."""
        status = shown.effective_status
        seen = self._seen.get(shown.service)
        self._seen[shown.service] = _Seen(now_ms(), status)
        if seen is None or seen.status is not status:
            self.engine.observe(shown.service, status, shown.reason, shown.since, now_ms())
            self._wake.set()

    def _mark_stale(self, now: int) -> None:
        """A service with no fresh check is unknown: said as such, never guessed."""
        for name, seen in self._seen.items():
            limit = self._stale_after.get(name)
            if limit is not None and seen.status is not Status.UNKNOWN and now > seen.at + limit:
                self._seen[name] = _Seen(seen.at, Status.UNKNOWN)
                reason = f"no fresh check for {limit / 1000:g} s"
                self.engine.observe(name, Status.UNKNOWN, reason, seen.at + limit, now)

    async def _take_lead(self) -> None:
        rows = await self.outbox.log(RESTORE_ROWS, now_ms() - LOG_KEEP_MS)
        announced = announced_from(rows)
        self.engine.restore(announced, now_ms())
        resumed = await self.delivery.resume()
        log.info("alert.leading", announced=len(announced), resumed=resumed)

    async def _hold(self, held: Iterable[Held], now: int) -> None:
        """Each held item is logged once and kept in the alert log as "held"."""
        rows = []
        for note in held:
            log.info("alert.held", service=note.item.service, status=note.item.status, why=note.why)
            message = Message(f"held-{uuid.uuid4().hex[:16]}", HELD_CHANNEL, now, (note.item,))
            rows.append(
                AlertRow(
                    message.key,
                    HELD_CHANNEL,
                    now,
                    "held",
                    0,
                    now,
                    now,
                    body_text(message),
                    note.why,
                )
            )
            self.delivery.tell(HELD_CHANNEL, "held")
        if rows:
            await self.outbox.add(rows)

    async def run(self) -> None:
        """Tick when a change arrives or something falls due (a supervised task)."""
        self.delivery.start()
        while True:
            # Cleared before deciding: a change arriving during the awaits below
            # wakes the next turn at once.
            self._wake.clear()
            leading = self.leading()
            if leading and not self.led:
                await self._take_lead()
            self.led = leading
            now = now_ms()
            timeout = REFRESH_S
            # A non-leader keeps its observations, and decides nothing: what
            # it would say is the leader's to say.
            if leading:
                self._mark_stale(now)
                outcome = self.engine.tick(now)
                await self._hold(outcome.held, now)
                await self.delivery.submit(outcome.messages)
                due = self.engine.next_due(now)
                if due is not None:
                    timeout = min(timeout, max(0.0, (due - now) / 1000))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def silenced(self, silences: tuple[Silence, ...]) -> None:
        """The silences changed: decide again now (a lifted one may release a held down)."""
        self.maintenance.silences = silences
        self._wake.set()

    async def stop(self) -> None:
        await self.delivery.stop()


ALERTER = web.AppKey("alerter", Alerter)
SILENCES = web.AppKey("silences", Silences)
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")


def _count(app: web.Application) -> Callable[[str, str], None]:
    metrics = app[METRICS]

    def count(channel: str, outcome: str) -> None:
        metrics.alert(channel, outcome)

    return count


async def alerts_context(app: web.Application) -> AsyncIterator[None]:
    """The outbox and silences for every role; the alerter where checks run."""
    settings = app[CONFIG].settings
    archive = app.get(ARCHIVE)
    outbox: Outbox = StoreOutbox(archive) if archive is not None else MemoryOutbox()
    app[OUTBOX] = outbox
    app[SILENCES] = Silences(archive)
    tasks: list[asyncio.Task[None]] = []
    if isinstance(outbox, StoreOutbox):
        # One write when the store opens (a task that returns is no crash: not supervised).
        tasks.append(asyncio.create_task(outbox.store_unstored(), name="alerts.outbox"))
    if "monitor" in app[PROCESS_ROLES]:
        recorder = app.get(RECORDER)

        def leading() -> bool:
            # No store open, nobody to agree with: better told twice than never.
            return recorder is None or recorder.leading or recorder.archive.store is None

        alerter = app[ALERTER] = Alerter(settings, outbox, app[SILENCES], leading=leading)
        alerter.delivery.on_outcome.append(_count(app))
        tasks.append(supervise("alerts", alerter.run))
    # Silences set through any process reach this one (the store is shared).
    tasks.append(supervise("alerts.silences", app[SILENCES].watch))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if ALERTER in app:
        await app[ALERTER].stop()


def current_mute(app: web.Application) -> Maintenance | None:
    """The windows and silences as the API shows them (None: alerts are not set up)."""
    silences = app.get(SILENCES)
    if silences is None:
        return None
    mute = Maintenance(app[CONFIG].settings.maintenance)
    mute.silences = silences.cached
    return mute


def alert_fields(
    app: web.Application, name: str, mute: Maintenance | None = None, now: int | None = None
) -> Mapping[str, object]:
    """What ``/api/services`` says of a service's alerts at ``now``: the window or silence
    holding them, and until when."""
    mute = mute if mute is not None else current_mute(app)
    # Nothing held anywhere: no lookup per service (1,000 services, one document).
    if mute is None or not (mute.windows or mute.silences):
        return {"maintenance": None, "maintenance_until_ms": None}
    service = app[CONFIG].settings.service(name)
    if service is None:
        return {"maintenance": None, "maintenance_until_ms": None}
    info = ServiceInfo(name, service.depends_on, getattr(service, "group", None), service.tags)
    hold = mute.hold(info, now if now is not None else now_ms())
    return {
        "maintenance": hold[0] if hold else None,
        "maintenance_until_ms": hold[1] if hold else None,
    }


def maintenance_next_ms(mute: Maintenance | None, now: int) -> int | None:
    """When a mark on the page may next change: a window's start or end, a silence's end."""
    return mute.next_change(now) if mute is not None else None


def row_json(row: AlertRow) -> dict[str, object]:
    body = json.loads(row.body)
    return {
        "key": row.key,
        "channel": row.channel,
        "state": row.state,
        "attempts": row.attempts,
        "created_ms": row.created_ms,
        "updated_ms": row.updated_ms,
        "next_ms": row.next_ms if row.state == "retrying" else None,
        "answer": row.answer,
        "title": body.get("title"),
        "alerts": body.get("alerts"),
    }
