"""Maintenance windows and silences: checks go on, alerts wait, and what still holds is
said when the window ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from healthmon.alerts.maintenance import Maintenance, next_boundary, window_active
from healthmon.alerts.rules import Engine, Policy, ServiceInfo
from healthmon.alerts.settings import MaintenanceWindow
from healthmon.models import Status
from healthmon.store.base import Silence
from tests.alerts.sink import Sink
from tests.alerts.test_delivery import with_alerts
from tests.support import make_settings, poll, running_system


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def test_recurring_window_follows_its_time_zone() -> None:
    """A 02:00-03:00 Europe/Berlin window is 00:00-01:00 UTC in summer, 01:00-02:00 in winter."""
    window = MaintenanceWindow.model_validate(
        {"cron": "0 2 * * *", "duration": "1h", "timezone": "Europe/Berlin"}
    )
    assert window_active(window, ms("2026-07-01T00:30:00+00:00"))
    assert not window_active(window, ms("2026-07-01T01:30:00+00:00"))
    assert window_active(window, ms("2026-01-15T01:30:00+00:00"))
    assert not window_active(window, ms("2026-01-15T00:30:00+00:00"))


def test_weekday_window_and_one_off_window() -> None:
    """A weekdays-only window is off on Sunday; a one-off window covers only its span."""
    weekdays = MaintenanceWindow.model_validate(
        {"cron": "0 9 * * 1-5", "duration": "30m", "timezone": "UTC"}
    )
    assert window_active(weekdays, ms("2026-12-04T09:10:00+00:00"))  # a Friday
    assert not window_active(weekdays, ms("2026-12-06T09:10:00+00:00"))  # a Sunday
    once = MaintenanceWindow.model_validate(
        {"start": "2026-12-04T10:00:00+01:00", "end": "2026-12-04T11:00:00+01:00"}
    )
    assert window_active(once, ms("2026-12-04T09:30:00+00:00"))
    assert not window_active(once, ms("2026-12-04T10:30:00+00:00"))


def test_a_down_during_maintenance_is_held_then_said_when_it_ends() -> None:
    """Inside the window nothing is sent (one 'held' note); still down after it: announced."""
    start = ms("2026-12-04T10:00:00+00:00")
    window = MaintenanceWindow.model_validate(
        {"services": ["db*"], "start": "2026-12-04T10:00:00Z", "end": "2026-12-04T10:10:00Z"}
    )
    mute = Maintenance([window])
    policy = Policy(on=frozenset({"down", "recovered"}), for_ms=0, repeat_ms=0, channels=("h",))
    engine = Engine(
        [ServiceInfo("db1"), ServiceInfo("web")], {"db1": policy, "web": policy}, mute=mute
    )
    engine.observe("db1", Status.DOWN, "refused", start + 60_000, start + 60_000)
    engine.observe("web", Status.DOWN, "refused", start + 60_000, start + 60_000)
    during = engine.tick(start + 60_000)
    assert [(m.items[0].service) for m in during.messages] == ["web"]
    assert [h.item.service for h in during.held] == ["db1"]
    assert engine.tick(start + 300_000).held == []
    after = engine.tick(start + 600_000)
    assert [(i.service, i.kind) for m in after.messages for i in m.items] == [("db1", "down")]


def test_silence_holds_matching_services_until_it_ends() -> None:
    """A silence on "pay*" holds payments' alerts until its end, then the down is said."""
    mute = Maintenance()
    mute.silences = (Silence("s1", ("pay*",), 10_000, "deploy", 0),)
    policy = Policy(on=frozenset({"down"}), for_ms=0, repeat_ms=0, channels=("h",))
    engine = Engine([ServiceInfo("payments")], {"payments": policy}, mute=mute)
    engine.observe("payments", Status.DOWN, None, 1_000, 1_000)
    assert engine.tick(1_000).messages == []
    assert [m.items[0].kind for m in engine.tick(10_000).messages] == ["down"]


async def test_silences_api_holds_alerts_and_shows_on_services() -> None:
    """POST /api/silences holds a service's alerts, /api/services says so; DELETE lifts it."""
    async with Sink() as sink:
        hook = {"name": "hook", "kind": "webhook", "url": sink.url("ok")}
        settings = with_alerts(make_settings(("auth", "billing")), [hook])
        async with running_system(settings) as system:
            status, silence = await system.post(
                "/api/silences", {"services": ["auth"], "minutes": 30, "comment": "deploy"}
            )
            assert status == 201, silence
            listed = await system.get("/api/silences")
            assert [s["id"] for s in listed["silences"]] == [silence["id"]]
            shown = await system.get("/api/services")
            auth = next(s for s in shown["services"] if s["name"] == "auth")
            assert auth["maintenance"] == "silenced: deploy"
            # Until when, and when the page should look again: the silence's end.
            assert auth["maintenance_until_ms"] == silence["until_ms"]
            assert shown["maintenance_next_ms"] == silence["until_ms"]
            await system.set_mode("auth", "down")
            await system.set_mode("billing", "down")
            got = await sink.next()
            assert [a["service"] for a in got.json["alerts"]] == ["billing"]
            log = await poll(
                lambda: system.get("/api/alerts"),
                lambda b: "held" in [a["state"] for a in b["alerts"]],
            )
            held = next(a for a in log["alerts"] if a["state"] == "held")
            assert held["alerts"][0]["service"] == "auth"
            url = f"{system.base}/api/silences/{silence['id']}"
            async with system.session.delete(url) as response:
                assert response.status == 200
            lifted = await sink.next()
            assert [(a["service"], a["kind"]) for a in lifted.json["alerts"]] == [("auth", "down")]
            async with system.session.delete(url) as response:
                assert response.status == 404


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# Around the changes of offset in 2026 (Berlin, New York, Lord Howe's half hour).
DST_DAYS = [
    ms("2026-03-08T00:00:00+00:00"),
    ms("2026-03-29T00:00:00+00:00"),
    ms("2026-04-04T12:00:00+00:00"),
    ms("2026-10-03T12:00:00+00:00"),
    ms("2026-10-25T00:00:00+00:00"),
    ms("2026-11-01T00:00:00+00:00"),
]
recurring_windows = st.builds(
    lambda cron, minutes, zone: MaintenanceWindow.model_validate(
        {"cron": cron, "duration": f"{minutes}m", "timezone": zone}
    ),
    st.sampled_from(["30 2 * * *", "0 1 * * *", "*/20 * * * *", "15 2 * * 0", "0 */3 * * *"]),
    st.integers(min_value=1, max_value=300),
    st.sampled_from(ZONES),
)


def one_off(start: int, minutes: int, zone: str, naive: bool) -> MaintenanceWindow:
    """A one-off window: aware times (instants) or naive ones (wall times in ``zone``)."""
    begin = datetime.fromtimestamp(start / 1000, UTC)
    end = begin + timedelta(minutes=minutes)
    if naive:
        begin, end = begin.replace(tzinfo=None), end.replace(tzinfo=None)
    return MaintenanceWindow.model_validate({"start": begin, "end": end, "timezone": zone})


one_off_windows = st.builds(
    one_off,
    st.sampled_from(DST_DAYS).flatmap(
        lambda day: st.integers(min_value=day - 86_400_000, max_value=day + 86_400_000)
    ),
    st.integers(min_value=1, max_value=600),
    st.sampled_from(ZONES),
    st.booleans(),
)


@settings(max_examples=300, deadline=None, phases=[p for p in Phase if p is not Phase.explain])
@given(
    window=st.one_of(recurring_windows, one_off_windows),
    now=st.sampled_from(DST_DAYS).flatmap(
        lambda day: st.integers(min_value=day - 86_400_000, max_value=day + 2 * 86_400_000)
    ),
    probes=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), max_size=20),
)
@example(
    window=MaintenanceWindow.model_validate(
        {"cron": "30 2 * * *", "duration": "1h", "timezone": "Europe/Berlin"}
    ),
    now=ms("2026-03-29T00:00:00+00:00"),
    probes=[],
)
@example(
    window=MaintenanceWindow.model_validate(
        {"cron": "30 2 * * *", "duration": "1h", "timezone": "Europe/Berlin"}
    ),
    now=ms("2026-10-25T00:45:00+00:00"),
    probes=[],
)
def test_next_boundary_is_where_the_window_next_flips(
    window: MaintenanceWindow, now: int, probes: list[float]
) -> None:
    """Between now and next_boundary the window's activity holds; at the boundary it flips
    (also when clocks change: a start skipped forward or repeated back)."""
    boundary = next_boundary(window, now)
    active = window_active(window, now)
    if boundary is None:
        # "Never": a one-off window that is over, or starts that overlap for good.
        assert window.start is None or not active
        assert all(window_active(window, now + h * 3_600_000) == active for h in range(1, 73))
        return
    assert boundary > now
    assert window_active(window, boundary) != active
    assert window_active(window, boundary - 1) == active
    span = boundary - now
    # Every minute (cron boundaries fall on them) in a short span, every quarter
    # hour in a long one, and random instants.
    step = 60_000 if span < 6 * 3_600_000 else 900_000
    grid = range(now - now % step + step, boundary, step)
    for moment in [*grid, *(now + 1 + int(p * (span - 1)) for p in probes)]:
        assert window_active(window, moment) == active, moment


def test_next_boundary_of_a_window_that_never_ends_is_none() -> None:
    """Starts every minute, each lasting an hour: no end within the starts it reads."""
    window = MaintenanceWindow.model_validate({"cron": "* * * * *", "duration": "1h"})
    assert next_boundary(window, ms("2026-12-04T10:00:00+00:00")) is None


def test_next_boundary_of_a_window_ending_inside_a_millisecond() -> None:
    """A one-off end at 10:00:00.000500 flips at the first whole millisecond after it."""
    window = MaintenanceWindow.model_validate(
        {"start": "2026-12-04T09:00:00Z", "end": "2026-12-04T10:00:00.000500Z"}
    )
    boundary = next_boundary(window, ms("2026-12-04T09:30:00+00:00"))
    assert boundary == ms("2026-12-04T10:00:00+00:00") + 1
    assert window_active(window, boundary - 1)
    assert not window_active(window, boundary)
