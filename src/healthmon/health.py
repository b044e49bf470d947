"""Reading a health answer: HTTP status, health+json and Spring Boot Actuator bodies.

Pure functions from what a service said to a ``Status`` and a reason; the
worst of the body's own status and its checks' statuses decides, and the
checks that are not passing are kept so a person can see *why*.

health+json follows draft-inadreamof-health-check (``status`` pass / warn /
fail with the aliases ok / up and error / down, ``checks`` mapping names to
lists of entries; ``details`` is the draft's older name for ``checks``).
Actuator answers ``status`` UP / DOWN / OUT_OF_SERVICE / UNKNOWN with
``components`` (``details`` before Spring Boot 2.2), which may nest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from healthmon.models import FailingCheck, Status

_STATUS_WORDS = {
    "pass": Status.UP,
    "ok": Status.UP,
    "up": Status.UP,
    "warn": Status.DEGRADED,
    "warning": Status.DEGRADED,
    "degraded": Status.DEGRADED,
    # Actuator: the state of the component is not known.
    "unknown": Status.DEGRADED,
    "fail": Status.DOWN,
    "error": Status.DOWN,
    "down": Status.DOWN,
    "out_of_service": Status.DOWN,
}
_SEVERITY = {Status.UP: 0, Status.DEGRADED: 1, Status.DOWN: 2}
MAX_CHECKS = 20
MAX_OUTPUT = 200


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reason: str | None
    checks: tuple[FailingCheck, ...] = ()


def _word(value: object) -> Status | None:
    return _STATUS_WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def _short(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text[:MAX_OUTPUT]


def _document(body: bytes) -> dict[str, Any] | None:
    if not body or body.lstrip()[:1] != b"{":
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _health_checks(checks: object) -> list[FailingCheck]:
    """health+json ``checks``: name → list of entries (a lone object is accepted)."""
    found: list[FailingCheck] = []
    if not isinstance(checks, dict):
        return found
    for name, entries in checks.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, dict):
                continue
            status = _word(entry.get("status"))
            if status is None or status is Status.UP:
                continue
            observed = entry.get("observedValue")
            unit = entry.get("observedUnit")
            component = entry.get("componentId")
            found.append(
                FailingCheck(
                    name=f"{name} ({component})" if component else str(name),
                    status=status,
                    output=_short(entry.get("output")),
                    observed=None
                    if observed is None
                    else f"{observed}{' ' + unit if unit else ''}",
                )
            )
    return found


def _actuator_components(components: object, prefix: str = "") -> list[FailingCheck]:
    """Actuator ``components``, nested for composite indicators."""
    found: list[FailingCheck] = []
    if not isinstance(components, dict):
        return found
    for name, component in components.items():
        if not isinstance(component, dict):
            continue
        path = f"{prefix}{name}"
        nested = component.get("components")
        if isinstance(nested, dict):
            found += _actuator_components(nested, f"{path}.")
            continue
        status = _word(component.get("status"))
        if status is None or status is Status.UP:
            continue
        details = component.get("details")
        output = details.get("error") if isinstance(details, dict) else None
        found.append(
            FailingCheck(name=path, status=status, output=_short(output or details), observed=None)
        )
    return found


def read_body(body: bytes) -> Verdict:
    """The verdict of a 2xx answer's body; no recognisable body means up."""
    doc = _document(body)
    if doc is None:
        return Verdict(Status.UP, None)
    top = _word(doc.get("status"))
    if "checks" in doc:
        checks = _health_checks(doc["checks"])
    elif "components" in doc:
        checks = _actuator_components(doc["components"])
    else:
        # "details" is the older name in both formats: lists say health+json.
        details = doc.get("details")
        as_lists = isinstance(details, dict) and all(isinstance(v, list) for v in details.values())
        checks = _health_checks(details) if as_lists else _actuator_components(details)
    checks.sort(key=lambda c: -_SEVERITY[c.status])
    status = max([top or Status.UP, *(c.status for c in checks)], key=_SEVERITY.__getitem__)
    if status is Status.UP:
        return Verdict(Status.UP, None)
    return Verdict(status, _reason(doc, status, checks), tuple(checks[:MAX_CHECKS]))


def _reason(doc: dict[str, Any], status: Status, checks: list[FailingCheck]) -> str:
    if checks:
        worst = checks[0]
        detail = worst.output or worst.observed
        more = f" (+{len(checks) - 1} more)" if len(checks) > 1 else ""
        return f"{worst.name}: {worst.status_word}{': ' + detail if detail else ''}{more}"
    output = _short(doc.get("output"))
    return output or f"health status: {doc.get('status')}"


def read_answer(http_status: int, body: bytes, expected: tuple[tuple[int, int], ...]) -> Verdict:
    """An HTTP answer: an unexpected status is down, whatever the body says."""
    if not any(low <= http_status <= high for low, high in expected):
        verdict = read_body(body)
        reason = f"HTTP {http_status}"
        doc = _document(body)
        detail = verdict.reason if verdict.status is not Status.UP else None
        if detail is None and doc is not None:
            detail = _short(doc.get("output"))
        return Verdict(Status.DOWN, f"{reason}: {detail}" if detail else reason, verdict.checks)
    return read_body(body)
