"""Alerts end to end: a mock service goes down, a real receiver hears of it, once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from healthmon.alerts.channels import EVENT_SOURCE
from healthmon.alerts.delivery import Delivery
from healthmon.alerts.outbox import MemoryOutbox
from healthmon.alerts.rules import Item, Message
from healthmon.alerts.settings import AlertSettings, ChannelSettings
from healthmon.config import Settings
from healthmon.models import Status, now_ms
from tests.alerts.sink import Sink
from tests.support import make_settings, poll, running_system


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


def with_alerts(settings: Settings, channels: list[dict[str, Any]], **alerts: Any) -> Settings:
    """``settings`` telling every service's changes to ``channels``."""
    return settings.model_copy(
        update={
            "channels": tuple(ChannelSettings.model_validate(c) for c in channels),
            "alerts": AlertSettings.model_validate(
                {"channels": [c["name"] for c in channels], **alerts}
            ),
        }
    )


async def test_a_service_going_down_is_posted_once_signed_with_its_key(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killing a service posts one signed JSON message naming it; its recovery posts another."""
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    base = make_settings(("auth", "billing"))
    hook = {"name": "hook", "kind": "webhook", "url": sink.url("ok"), "secret": "${HOOK_SECRET}"}
    settings = with_alerts(base, [hook])
    async with running_system(settings) as system:
        await system.set_mode("auth", "down")
        down = await sink.next()
        body = down.json
        assert [(a["service"], a["kind"]) for a in body["alerts"]] == [("auth", "down")]
        assert down.headers["Idempotency-Key"] == body["key"]
        expected = hmac.new(b"s3cret", down.body, hashlib.sha256).hexdigest()
        assert down.headers["X-Healthmon-Signature"] == f"sha256={expected}"
        await system.set_mode("auth", "up")
        up = await sink.next()
        assert [(a["service"], a["kind"]) for a in up.json["alerts"]] == [("auth", "recovered")]
        assert up.json["key"] != body["key"]
        log = await poll(
            lambda: system.get("/api/alerts"),
            lambda b: [a["state"] for a in b["alerts"]] == ["sent", "sent"],
        )
        assert log["alerts"][0]["answer"].startswith("200")
        metrics = await (await system.session.get(f"{system.base}/metrics")).text()
        assert 'healthmon_alerts_total{channel="hook",outcome="sent"} 2.0' in metrics
    assert len(sink.received) == 2


async def test_cloudevents_structured_mode(sink: Sink) -> None:
    """With cloudevents = true the body is a CloudEvent whose id is the idempotency key."""
    hook = {"name": "ce", "kind": "webhook", "url": sink.url("ok"), "cloudevents": True}
    settings = with_alerts(make_settings(("auth",)), [hook])
    async with running_system(settings) as system:
        await system.set_mode("auth", "down")
        got = await sink.next()
    assert got.headers["Content-Type"] == "application/cloudevents+json"
    event = got.json
    assert event["specversion"] == "1.0"
    assert event["id"] == got.headers["Idempotency-Key"]
    assert event["source"] == EVENT_SOURCE
    assert event["data"]["alerts"][0]["service"] == "auth"


def channel(name: str, url: str, **more: Any) -> ChannelSettings:
    return ChannelSettings.model_validate({"name": name, "kind": "webhook", "url": url, **more})


def message(key: str, channel: str) -> Message:
    item = Item("auth", "down", Status.DOWN, "refused", 0, now_ms())
    return Message(key, channel, now_ms(), (item,))


async def test_a_hanging_channel_delays_no_other_channel(sink: Sink) -> None:
    """While one receiver hangs, another channel's messages still arrive at once."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    outbox = MemoryOutbox()
    delivery = Delivery(outbox, rng=random.Random(seed))
    delivery.set_channels(
        [
            channel("stuck", sink.url("hang"), timeout="30s"),
            channel("fine", sink.url("ok")),
        ],
        60_000,
    )
    delivery.start()
    try:
        await delivery.submit([message("k-stuck", "stuck")])
        assert (await sink.next()).path == "/hang"
        loop = asyncio.get_running_loop()
        started = loop.time()
        await delivery.submit([message(f"k-{i}", "fine") for i in range(5)])
        paths = [(await sink.next(within=2)).path for _ in range(5)]
        assert paths == ["/ok"] * 5
        assert loop.time() - started < 1.0
    finally:
        await delivery.stop()


async def test_failures_are_retried_with_the_same_key_then_sent(sink: Sink) -> None:
    """A receiver failing twice gets the same message three times, the same key each time."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    outbox = MemoryOutbox()
    delivery = Delivery(outbox, rng=random.Random(seed), backoff_base_s=0.01)
    delivery.set_channels(
        [ChannelSettings(name="f", kind="webhook", url=sink.url("flaky"))], 60_000
    )
    delivery.start()
    try:
        await delivery.submit([message("k-1", "f")])
        keys = [(await sink.next()).headers["Idempotency-Key"] for _ in range(3)]
        assert keys == ["k-1"] * 3
        rows = await poll(lambda: outbox.log(10, 0), lambda r: r[0].state == "sent")
        assert rows[0].attempts == 3
    finally:
        await delivery.stop()


async def test_past_max_age_a_message_is_reported_failed(sink: Sink) -> None:
    """A receiver that keeps failing is given up after max_age, and the log says failed."""
    outbox = MemoryOutbox()
    delivery = Delivery(outbox, rng=random.Random(1), backoff_base_s=0.01)
    delivery.set_channels([channel("f", sink.url("fail"))], 300)
    delivery.start()
    try:
        await delivery.submit([message("k-1", "f")])
        rows = await poll(lambda: outbox.log(10, 0), lambda r: r[0].state == "failed", 10)
        assert rows[0].answer.startswith("500")
        assert rows[0].attempts >= 2
    finally:
        await delivery.stop()


async def test_a_hanging_receiver_never_delays_checks_or_pushes(sink: Sink) -> None:
    """While the only channel's receiver hangs, the page still hears every change at once."""
    hook = {"name": "stuck", "kind": "webhook", "url": sink.url("hang"), "timeout": "60s"}
    settings = with_alerts(make_settings(("auth", "billing")), [hook])
    async with running_system(settings) as system:
        messages = await system.connected()
        await system.set_mode("auth", "down")
        assert (await sink.next()).path == "/hang"
        loop = asyncio.get_running_loop()
        for mode, up in (("down", False), ("up", True)):
            started = loop.time()
            await system.set_mode("billing", mode)
            assert (await messages.update_for("billing", within=2))["up"] is up
            assert loop.time() - started < 1.0
        assert len(sink.received) == 1
