"""The alert engine: given status changes and a clock, what to say, to whom, and when.

Pure: no I/O and no clock of its own, so every rule is proved with a fake
clock. The loop (``service.py``) feeds it the shown state of each service
and ticks it; it answers with messages, one per channel per digest.

How it decides, per service (a reconciliation, not a list of triggers):

- a state that is not up and listed in the rule's ``on`` is announced once
  it has lasted ``for``; a later other such state is announced as a change;
- "up" after an announced state is a recovery (only then: a blip that was
  never announced is never "recovered");
- "unknown" is said as unknown, never read as up or down;
- an announced state that lasts is repeated every ``repeat``, and each
  ``escalate`` step is told once, ``after`` the announcement;
- while a maintenance window or silence covers the service nothing is said
  for it; what still holds when it ends is said then.

Per channel, items wait ``digest`` ms and go out as one message; a service
down because something it depends on (``depends_on``, transitively) is down
is folded into that root cause's item as "affected". A channel's
``rate_limit`` (messages a minute) holds messages back: their items join the
next message, none is dropped.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from healthmon.alerts.settings import AlertSettings
from healthmon.models import Status

Kind = Literal["down", "degraded", "unknown", "recovered", "reminder", "escalated", "test"]
RATE_WINDOW_MS = 60_000
NOT_UP = (Status.DOWN, Status.DEGRADED, Status.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Item:
    """One thing said about one service."""

    service: str
    kind: Kind
    status: Status
    reason: str | None
    since: int | None
    at: int
    description: str | None = None
    # The service this one is down because of (depends_on), when known.
    cause: str | None = None
    # Services down because of this one, folded into this item.
    affected: tuple[str, ...] = ()

    def line(self) -> str:
        """One human line, as a chat message or an email body shows it."""
        word = {"reminder": "still", "escalated": "escalated:"}.get(self.kind, "")
        text = f"{self.service} is {word + ' ' if word else ''}{self.status.value}"
        if self.kind == "recovered":
            text = f"{self.service} recovered ({self.status.value})"
        if self.reason:
            text += f": {self.reason}"
        if self.cause:
            text += f" (because {self.cause} is down)"
        if self.affected:
            text += f"; affects {', '.join(self.affected)}"
        return text


@dataclass(frozen=True, slots=True)
class Message:
    """What one channel receives at once: a key for deduplication, and its items."""

    key: str
    channel: str
    created_ms: int
    items: tuple[Item, ...]

    @property
    def title(self) -> str:
        if len(self.items) == 1:
            return self.items[0].line()
        worst = [i for i in self.items if i.kind not in ("recovered", "test")]
        return f"{len(self.items)} alerts: " + (
            f"{len(worst)} not up" if worst else "all recovered"
        )

    @property
    def text(self) -> str:
        return "\n".join(item.line() for item in self.items)


@dataclass(frozen=True, slots=True)
class Policy:
    """A rule as resolved for one service: every key filled from ``[alerts]``."""

    on: frozenset[str]
    for_ms: int
    repeat_ms: int
    channels: tuple[str, ...]
    escalate: tuple[tuple[int, tuple[str, ...]], ...] = ()
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    depends_on: tuple[str, ...] = ()
    group: str | None = None
    tags: tuple[str, ...] = ()


class Mute(Protocol):
    """Says why a service's alerts are held right now (None: they are not)."""

    def reason(self, service: ServiceInfo, now: int) -> str | None: ...


@dataclass(slots=True)
class _Track:
    info: ServiceInfo
    policy: Policy | None
    status: Status | None = None
    reason: str | None = None
    since: int | None = None
    announced: Status | None = None
    announced_at: int = 0
    last_sent: int = 0
    escalated: int = 0
    held: Status | None = None


@dataclass(slots=True)
class _Outbox:
    """One channel's items waiting for their digest, and its recent sends."""

    items: list[Item] = field(default_factory=list)
    first_at: int = 0
    sent: collections.deque[int] = field(default_factory=collections.deque)


@dataclass(frozen=True, slots=True)
class Held:
    """An item a window or silence held back, said once (log ``alert.held``)."""

    item: Item
    why: str


@dataclass(slots=True)
class Outcome:
    messages: list[Message] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)


class Engine:
    """Decides what to send; keeps only what it needs to decide the next time."""

    def __init__(
        self,
        services: Iterable[ServiceInfo],
        policies: Mapping[str, Policy | None],
        *,
        digest_ms: int = 0,
        rate_limits: Mapping[str, int | None] | None = None,
        key_prefix: str = "a",
        mute: Mute | None = None,
    ) -> None:
        self.digest_ms = digest_ms
        self.rate_limits = dict(rate_limits or {})
        self.key_prefix = key_prefix
        self.mute = mute
        self._seq = 0
        self._tracks: dict[str, _Track] = {}
        self._outboxes: dict[str, _Outbox] = {}
        self.configure(services, policies, digest_ms=digest_ms, rate_limits=rate_limits)

    def configure(
        self,
        services: Iterable[ServiceInfo],
        policies: Mapping[str, Policy | None],
        *,
        digest_ms: int,
        rate_limits: Mapping[str, int | None] | None,
    ) -> None:
        """Follow a reload: known services keep what was announced."""
        self.digest_ms = digest_ms
        self.rate_limits = dict(rate_limits or {})
        tracks = {}
        for info in services:
            track = self._tracks.get(info.name) or _Track(info, None)
            track.info, track.policy = info, policies.get(info.name)
            tracks[info.name] = track
        self._tracks = tracks

    # -- input ---------------------------------------------------------------

    def observe(
        self, service: str, status: Status, reason: str | None, since: int | None, now: int
    ) -> None:
        """The state shown for ``service`` now (the same state again changes nothing)."""
        track = self._tracks.get(service)
        if track is None:
            return
        if status is not track.status:
            track.since = since if since is not None else now
        track.status, track.reason = status, reason

    def announced(self) -> dict[str, Status]:
        """What was said and still holds, per service (saved so a restart does not repeat it)."""
        return {n: t.announced for n, t in self._tracks.items() if t.announced is not None}

    def restore(self, announced: Mapping[str, Status], now: int) -> None:
        """Take over what an earlier process announced: no second "down", a recovery later."""
        for name, status in announced.items():
            track = self._tracks.get(name)
            if track is not None and track.announced is None:
                track.announced, track.announced_at, track.last_sent = status, now, now
                track.escalated = len(track.policy.escalate) if track.policy else 0

    # -- deciding ------------------------------------------------------------

    def tick(self, now: int) -> Outcome:
        """Everything due at ``now``: new items into each channel's digest, digests out."""
        outcome = Outcome()
        for track in self._tracks.values():
            self._decide(track, now, outcome)
        for channel, box in self._outboxes.items():
            message = self._flush(channel, box, now)
            if message is not None:
                outcome.messages.append(message)
        return outcome

    def next_due(self, now: int) -> int | None:
        """The next time a tick may have something to do without new input (None: never)."""
        times: list[int] = []
        for track in self._tracks.values():
            policy = track.policy
            if policy is None or track.status is None:
                continue
            if track.status in NOT_UP and track.announced is not track.status:
                times.append((now if track.since is None else track.since) + policy.for_ms)
            if track.announced is not None and track.announced is track.status:
                if policy.repeat_ms:
                    times.append(track.last_sent + policy.repeat_ms)
                if track.escalated < len(policy.escalate):
                    times.append(track.announced_at + policy.escalate[track.escalated][0])
        for channel, box in self._outboxes.items():
            if box.items:
                times.append(max(box.first_at + self.digest_ms, self._rate_free_at(channel, box)))
        return max(now, min(times)) if times else None

    def pending(self) -> dict[str, int]:
        """Items waiting for their digest or the rate limit, per channel."""
        return {c: len(box.items) for c, box in self._outboxes.items() if box.items}

    def _item(self, track: _Track, kind: Kind, status: Status, now: int) -> Item:
        description = track.policy.description if track.policy else None
        return Item(track.info.name, kind, status, track.reason, track.since, now, description)

    def _decide(self, track: _Track, now: int, outcome: Outcome) -> None:
        policy, status = track.policy, track.status
        if policy is None or status is None:
            return
        due: list[tuple[Item, tuple[str, ...]]] = []
        if status is Status.UP:
            if track.announced is not None:
                if "recovered" in policy.on:
                    due.append((self._item(track, "recovered", status, now), policy.channels))
                else:
                    track.announced = None
        elif status is not track.announced and status.value in policy.on:
            if now >= (now if track.since is None else track.since) + policy.for_ms:
                due.append((self._item(track, status.value, status, now), policy.channels))  # type: ignore[arg-type]
        elif status is track.announced:
            if policy.repeat_ms and now >= track.last_sent + policy.repeat_ms:
                due.append((self._item(track, "reminder", status, now), policy.channels))
            if track.escalated < len(policy.escalate):
                after, channels = policy.escalate[track.escalated]
                if now >= track.announced_at + after:
                    due.append((self._item(track, "escalated", status, now), channels))
        if not due:
            return
        why = self.mute.reason(track.info, now) if self.mute is not None else None
        if why is not None:
            if track.held is not status:
                track.held = status
                outcome.held.append(Held(due[0][0], why))
            return
        track.held = None
        for item, channels in due:
            self._note(track, item, now)
            for channel in channels:
                self._queue(channel, item, now)

    def _note(self, track: _Track, item: Item, now: int) -> None:
        # Escalation goes to other people: the reminders' rhythm stays as it was.
        if item.kind != "escalated":
            track.last_sent = now
        if item.kind == "recovered":
            track.announced, track.escalated = None, 0
        elif item.kind == "escalated":
            track.escalated += 1
        elif item.kind != "reminder":
            track.announced, track.announced_at, track.escalated = item.status, now, 0

    def _queue(self, channel: str, item: Item, now: int) -> None:
        box = self._outboxes.setdefault(channel, _Outbox())
        if not box.items:
            box.first_at = now
        box.items.append(item)

    # -- digests -------------------------------------------------------------

    def _rate_free_at(self, channel: str, box: _Outbox) -> int:
        limit = self.rate_limits.get(channel)
        if limit is None or len(box.sent) < limit:
            return 0
        return box.sent[-limit] + RATE_WINDOW_MS

    def _flush(self, channel: str, box: _Outbox, now: int) -> Message | None:
        if not box.items or now < box.first_at + self.digest_ms:
            return None
        while box.sent and box.sent[0] <= now - RATE_WINDOW_MS:
            box.sent.popleft()
        if now < self._rate_free_at(channel, box):
            return None
        items, box.items = box.items, []
        box.sent.append(now)
        self._seq += 1
        return Message(f"{self.key_prefix}-{self._seq}", channel, now, tuple(self._fold(items)))

    def chain(self, name: str) -> list[str]:
        """Every service ``name`` depends on, directly or not, nearest first."""
        seen: list[str] = []
        pending = list(self._tracks[name].info.depends_on) if name in self._tracks else []
        while pending:
            dependency = pending.pop(0)
            if dependency in seen or dependency not in self._tracks:
                continue
            seen.append(dependency)
            pending.extend(self._tracks[dependency].info.depends_on)
        return seen

    def root_cause(self, name: str) -> str | None:
        """The farthest service in ``name``'s chain that is down now (None: none is)."""
        down = [d for d in self.chain(name) if self._tracks[d].status is Status.DOWN]
        return down[-1] if down else None

    def _fold(self, items: Sequence[Item]) -> list[Item]:
        """Each service down because of another is listed under it, not said alone."""
        by_service = {(i.service, i.kind == "recovered"): n for n, i in enumerate(items)}
        # A service that flapped within the digest keeps its items, in order: folded under
        # its root, one of them would move ahead of the others (a down said after its
        # recovery), or list it as affected when it is up again.
        said = collections.Counter(i.service for i in items)
        out: list[Item | None] = list(items)
        for index, item in enumerate(items):
            if item.kind not in ("down", "recovered"):
                continue
            recovered = item.kind == "recovered"
            roots = [d for d in self.chain(item.service) if (d, recovered) in by_service]
            cause = roots[-1] if roots else (None if recovered else self.root_cause(item.service))
            if cause is None:
                continue
            host = by_service.get((cause, recovered))
            host_item = out[host] if host is not None else None
            if said[item.service] == 1 and host is not None and host_item is not None:
                out[host] = replace(host_item, affected=(*host_item.affected, item.service))
                out[index] = None
            else:
                out[index] = replace(item, cause=cause)
        return [i for i in out if i is not None]


def resolve_policies(
    services: Sequence[ServiceInfo], defaults: AlertSettings
) -> dict[str, Policy | None]:
    """Each service's policy: the first rule that covers it over ``[alerts]``, or the
    defaults alone (None when they name no channel: nothing to tell)."""
    found: dict[str, Policy | None] = {}
    for info in services:
        rule = next((r for r in defaults.rules if r.covers(info.name, info.group, info.tags)), None)
        on = (rule and rule.on) or defaults.on
        channels = (rule.channels if rule and rule.channels is not None else None) or (
            defaults.channels
        )
        escalate = rule.escalate if rule and rule.escalate is not None else defaults.escalate
        if not channels and not escalate:
            found[info.name] = None
            continue
        found[info.name] = Policy(
            on=frozenset(on),
            for_ms=rule.for_ if rule and rule.for_ is not None else defaults.for_,
            repeat_ms=rule.repeat if rule and rule.repeat is not None else defaults.repeat,
            channels=tuple(channels),
            escalate=tuple(sorted((e.after, tuple(e.channels)) for e in escalate)),
            description=rule.description if rule else None,
        )
    return found
