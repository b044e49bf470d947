"""From ``[alerts]`` and ``[[alerts.rules]]`` to each service's policy: defaults in one
place, the first covering rule overriding them."""

from __future__ import annotations

from healthmon.alerts.rules import Policy, ServiceInfo, resolve_policies
from healthmon.alerts.settings import AlertSettings

SERVICES = [
    ServiceInfo("payments-api", tags=("money",)),
    ServiceInfo("ledger", tags=("money",)),
    ServiceInfo("search", group="web"),
    ServiceInfo("thumbnails"),
]


def test_rules_override_the_defaults_for_what_they_cover() -> None:
    """A glob rule, a tag rule and a group rule each change only their services' keys."""
    alerts = AlertSettings.model_validate(
        {
            "channels": ["hook"],
            "for": "30s",
            "repeat": "1h",
            "rules": [
                {
                    "services": ["pay*"],
                    "for": "0s",
                    "escalate": [{"after": "10m", "channels": ["pager"]}],
                    "description": "card payments",
                },
                {"tags": ["money"], "channels": ["finance"], "repeat": "0"},
                {"groups": ["web"], "on": ["down", "recovered", "unknown"]},
            ],
        }
    )
    policies = resolve_policies(SERVICES, alerts)
    assert policies["payments-api"] == Policy(
        on=frozenset({"down", "degraded", "recovered"}),
        for_ms=0,
        repeat_ms=3_600_000,
        channels=("hook",),
        escalate=((600_000, ("pager",)),),
        description="card payments",
    )
    ledger = policies["ledger"]
    assert ledger is not None
    assert (ledger.channels, ledger.repeat_ms, ledger.for_ms) == (("finance",), 0, 30_000)
    search = policies["search"]
    assert search is not None
    assert search.on == frozenset({"down", "recovered", "unknown"})
    assert policies["thumbnails"] == Policy(
        on=frozenset({"down", "degraded", "recovered"}),
        for_ms=30_000,
        repeat_ms=3_600_000,
        channels=("hook",),
    )


def test_without_channels_nothing_is_told() -> None:
    """No channel in the defaults and no rule: no policy, so the engine says nothing."""
    policies = resolve_policies(SERVICES, AlertSettings())
    assert set(policies.values()) == {None}
