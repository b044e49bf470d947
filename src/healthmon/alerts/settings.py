"""The ``[[channels]]``, ``[alerts]`` and ``[[maintenance]]`` tables, validated once.

They live beside the alerts package rather than in ``config.py`` so the alert
feature is one folder; ``config.py`` only names the three tables and checks
what crosses them (a rule's channel must exist). Durations, URLs and
``${VAR}`` secrets are ``healthmon.fields`` types, as in every other table.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import zoneinfo
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    model_validator,
)

from healthmon.fields import (
    Duration,
    HeaderName,
    HeaderValue,
    HttpUrl,
    Section,
    duration,
    expand_env,
)


def _duration_or_zero(value: object) -> int:
    """A duration, or 0 (off)."""
    return 0 if value in (0, "0") and not isinstance(value, bool) else duration(value)


DurationOrZero = Annotated[int, BeforeValidator(_duration_or_zero)]
Change = Literal["down", "degraded", "unknown", "recovered"]
Secret = HeaderValue  # the same rule: ${VAR} from the environment, never shown
Text = Annotated[str, BeforeValidator(expand_env)]
ChannelName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (like Europe/Berlin)") from None
    return value


def _cron(value: str) -> str:
    from cronsim import CronSim, CronSimError

    try:
        CronSim(value, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"{value!r} is not a cron expression: {exc}") from None
    return value


TimeZone = Annotated[str, AfterValidator(_timezone)]
Cron = Annotated[str, AfterValidator(_cron)]


class ChannelSettings(Section):
    """Where alerts go: one webhook, one mailbox, or Apprise URLs."""

    name: ChannelName
    kind: Literal["webhook", "email", "apprise"]
    # At most this many messages a minute; what waits goes into the next one.
    rate_limit: Annotated[int, Field(ge=1, le=10_000)] | None = None
    timeout: Duration = 10_000
    # webhook
    url: HttpUrl | None = None
    secret: Secret | None = None
    cloudevents: bool = False
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    # email
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: Literal["plain", "starttls", "tls"] = "starttls"
    username: Text | None = None
    password: Secret | None = None
    from_: Annotated[str | None, Field(alias="from")] = None
    to: tuple[str, ...] = ()
    # apprise
    urls: tuple[Secret, ...] = ()

    @model_validator(mode="after")
    def _kind_fits(self) -> ChannelSettings:
        needed = {"webhook": ("url",), "email": ("host", "from_", "to"), "apprise": ("urls",)}
        for key in needed[self.kind]:
            if not getattr(self, key):
                shown = key.rstrip("_")
                raise ValueError(f'{shown}: needed by kind = "{self.kind}"')
        extra = {"email": "aiosmtplib", "apprise": "apprise"}.get(self.kind)
        if extra is not None and importlib.util.find_spec(extra) is None:
            raise ValueError(
                f'kind: "{self.kind}" needs the {self.kind} extra: '
                f"pip install 'healthmon[{self.kind}]'"
            )
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or {"plain": 25, "starttls": 587, "tls": 465}[self.security]


class Escalation(Section):
    after: Duration
    channels: tuple[ChannelName, ...] = Field(min_length=1)


class Selector(Section):
    """Which services a rule (or a window) covers: names or globs, groups, tags."""

    services: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def covers(self, name: str, group: str | None, tags: tuple[str, ...]) -> bool:
        if not (self.services or self.groups or self.tags):
            return True
        return (
            any(fnmatch.fnmatchcase(name, pattern) for pattern in self.services)
            or (group is not None and group in self.groups)
            or bool(set(tags) & set(self.tags))
        )


class AlertRule(Selector):
    """One ``[[alerts.rules]]``: unset keys take ``[alerts]``'s value."""

    on: tuple[Change, ...] | None = None
    for_: Annotated[Duration | None, Field(alias="for")] = None
    repeat: DurationOrZero | None = None
    channels: tuple[ChannelName, ...] | None = None
    escalate: tuple[Escalation, ...] | None = None
    description: str | None = None


class AlertSettings(Section):
    """``[alerts]``: the defaults every rule starts from, and the rules."""

    channels: tuple[ChannelName, ...] = ()
    on: tuple[Change, ...] = ("down", "degraded", "recovered")
    for_: Annotated[Duration, Field(alias="for")] = 0
    # 0: no reminders.
    repeat: DurationOrZero = 0
    # Changes within this window go out as one message per channel (0: at once).
    digest: DurationOrZero = 0
    escalate: tuple[Escalation, ...] = ()
    # A message not delivered within this long is reported failed.
    max_age: Duration = 3_600_000
    rules: tuple[AlertRule, ...] = ()

    @model_validator(mode="after")
    def _digest_fits(self) -> AlertSettings:
        repeats = [self.repeat, *(r.repeat for r in self.rules if r.repeat)]
        for index, repeat in enumerate(repeats):
            if repeat and self.digest > repeat:
                where = "repeat" if index == 0 else f"rules[{index - 1}].repeat"
                raise ValueError(f"digest: longer than a reminder interval ({where})")
        return self


class MaintenanceWindow(Selector):
    """A one-off window (start, end) or a recurring one (cron + duration), in a zone."""

    description: str | None = None
    timezone: TimeZone = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    cron: Cron | None = None
    duration: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MaintenanceWindow:
        once = self.start is not None or self.end is not None
        recurring = self.cron is not None or self.duration is not None
        if once == recurring:
            raise ValueError("start: give start and end, or cron and duration")
        if once and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("end: needs a start and an end after it")
        if recurring and (self.cron is None or self.duration is None):
            raise ValueError("cron: needs cron and duration together")
        return self


def alert_channel_problem(
    channels: tuple[ChannelSettings, ...], alerts: AlertSettings
) -> str | None:
    """A channel named twice, or a rule naming no channel that exists: said with its field."""
    names: set[str] = set()
    for index, channel in enumerate(channels):
        if channel.name in names:
            return f"channels[{index}].name: duplicate channel name {channel.name!r}"
        names.add(channel.name)
    wanted: list[tuple[str, tuple[str, ...]]] = [("alerts.channels", alerts.channels)]
    wanted += [
        (f"alerts.escalate[{i}].channels", e.channels) for i, e in enumerate(alerts.escalate)
    ]
    for r, rule in enumerate(alerts.rules):
        wanted.append((f"alerts.rules[{r}].channels", rule.channels or ()))
        for i, step in enumerate(rule.escalate or ()):
            wanted.append((f"alerts.rules[{r}].escalate[{i}].channels", step.channels))
    for where, named in wanted:
        for name in named:
            if name not in names:
                return f"{where}: unknown channel {name!r}"
    return None
