"""Reading a health answer: HTTP status, health+json and Spring Boot Actuator bodies.

Pure functions from what a service said to a ``Status`` and a reason; the
worst of the body's own status and its checks' statuses decides, and the
checks that are not passing are kept so a person can see *why*.

health+json follows draft-inadreamof-health-check (``status`` pass / warn /
fail with the aliases ok / up and error / down, ``checks`` mapping names to
lists of entries; ``details`` is the draft's older name for ``checks``).
Actuator answers ``status`` UP / DOWN / OUT_OF_SERVICE / UNKNOWN with
``components`` (``details`` before Spring Boot 2.2), which may nest.

Kubernetes-style verbose checks (``/readyz?verbose``, ``/livez?verbose``) are
plain text, one line per check: ``[+]ping ok``, ``[-]etcd failed: reason
withheld``, then ``readyz check passed`` or ``readyz check failed``; each
``[-]`` line is a failing check with its reason.

A status word outside those sets (``"unhealthy"``, ``"CRITICAL"``, ``false``,
a ``[?]`` line, ``readyz check skipped``) is never read as up: it is
DEGRADED, with "unknown status 'unhealthy'" as its reason, at the top of a
body and in a check alike. A check entry or component without a ``status``
says nothing.

Reading is total: any bytes give a ``Verdict``, never an exception. A body that
is not meant as JSON (a 2xx ``OK`` or HTML page) says nothing, so the HTTP
status decides. A body meant as JSON (starting with ``{`` or ``[``, or declared
``json``/``+json`` and starting like a JSON value) that cannot be read is DOWN
with the reason, never guessed up. Limits, each over-limit
body DOWN with a reason: ``MAX_BODY`` (64 KiB) of body, ``MAX_DEPTH`` (32) levels
of nested objects and arrays, ``MAX_NUMBER_CHARS`` (100) characters in a number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from healthmon.models import FailingCheck, Status

STATUS_WORDS = {
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

# Limits on what is read. Over any of them healthmon cannot tell that the
# service is healthy, and it does not guess: the check is DOWN with the reason.
#: Body bytes read; a fetcher reads one byte more so that a longer body shows.
MAX_BODY = 64 * 1024
#: Levels of nested objects and arrays, checked before parsing (no recursion).
MAX_DEPTH = 32
#: Characters in one JSON number (Python's int() refuses 4,300 digits anyway).
MAX_NUMBER_CHARS = 100

# A JSON string, escapes included; what remains outside them holds the brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
# The characters a JSON value can start with.
_JSON_STARTS = frozenset('{["-0123456789tfn')
# Kubernetes verbose checks: "[+]name ok", "[-]name failed: reason", "readyz check failed".
_K8S_LINE = re.compile(r"\[([^\]\s])\](.*)")
_K8S_RESULT = re.compile(r"\S+ check (\S+)")


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reason: str | None
    checks: tuple[FailingCheck, ...] = ()
    # False when nothing answered (refused, timed out): no latency to show.
    answered: bool = True


def no_answer(reason: str) -> Verdict:
    """Down because nothing answered: the time it took says nothing about the service."""
    return Verdict(Status.DOWN, reason, answered=False)


class _Unreadable(Exception):
    """A body meant as a health document that cannot be read; the reason is shown."""


def _clean(text: str, limit: int = MAX_OUTPUT) -> str:
    """At most ``limit`` characters that encode as UTF-8 (lone surrogates become '?')."""
    return text[:limit].encode("utf-8", "replace").decode("utf-8")


def _word(value: object) -> Status | None:
    return STATUS_WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def unknown_status(value: object) -> str:
    """The reason a status that is not a known word gives: "unknown status 'unhealthy'"."""
    if isinstance(value, str):
        return f"unknown status '{_clean(value, 40)}'"
    return f"unknown status {_clean(json.dumps(value, separators=(',', ':')), 40)}"


def _status(entry: dict[str, Any]) -> tuple[Status | None, str | None]:
    """An entry's status and, for a word that is not known, why it is degraded.

    No ``status`` key says nothing (None); any value that is not a known word
    is DEGRADED: healthmon never guesses that it means up.
    """
    if "status" not in entry:
        return None, None
    value = entry["status"]
    if (status := _word(value)) is not None:
        return status, None
    return Status.DEGRADED, unknown_status(value)


def _with(prefix: str | None, output: str | None) -> str | None:
    if prefix is None:
        return output
    return _clean(f"{prefix}: {output}") if output else prefix


def _short(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return _clean(text)


def _declares_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.endswith(("/json", "+json"))


def _depth(text: str) -> int:
    """How deeply objects and arrays nest, brackets inside strings not counted."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return 0  # too few brackets to go too deep: the usual case, at C speed
    brackets = _BRACKET.findall(_JSON_STRING.sub("", text))
    return max(accumulate(1 if b in "[{" else -1 for b in brackets), default=0)


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise _Unreadable(
                f"unreadable health body: a number longer than {MAX_NUMBER_CHARS} characters"
            )
        return kind(text)

    return parse


_parse_int, _parse_float = _number(int), _number(float)


def _document(body: bytes, content_type: str = "") -> dict[str, Any] | None:
    """The body's JSON object; None when the body is not meant as one.

    Raises ``_Unreadable`` for a body over a limit, or meant as JSON but unreadable.
    """
    if len(body) > MAX_BODY:
        raise _Unreadable(f"health body over {MAX_BODY // 1024} KiB")
    if not body.strip():
        return None
    try:
        text: str | None = body.decode(json.detect_encoding(body), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        text = None
    first = text.lstrip()[:1] if text is not None else body.lstrip()[:1].decode("latin-1")
    # Meant as JSON: an object or array, or any JSON value where JSON is declared.
    # Text ("OK", an HTML page) says nothing, even mislabelled: the HTTP status decides.
    if not (first in ("{", "[") or (first in _JSON_STARTS and _declares_json(content_type))):
        return None
    if text is None:
        raise _Unreadable("unreadable health body: not UTF-8 (or UTF-16/32) text")
    if _depth(text) > MAX_DEPTH:
        raise _Unreadable(f"health body nested deeper than {MAX_DEPTH} levels")
    try:
        doc = json.loads(text, parse_int=_parse_int, parse_float=_parse_float)
    except json.JSONDecodeError as exc:
        raise _Unreadable(
            f"unreadable health body: invalid JSON ({exc.msg} at line {exc.lineno}"
            f" column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        # Belt and braces: _depth and the number limit should have said so already.
        detail = _clean(str(exc) or type(exc).__name__)
        raise _Unreadable(f"unreadable health body: {detail}") from None
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
            status, unknown = _status(entry)
            if status is None or status is Status.UP:
                continue
            observed = _short(entry.get("observedValue"))
            # observedUnit is a string by the draft; any other value is shown as JSON.
            unit = _short(entry.get("observedUnit"))
            component = _short(entry.get("componentId"))
            found.append(
                FailingCheck(
                    name=_clean(f"{name} ({component})" if component else str(name)),
                    status=status,
                    output=_with(unknown, _short(entry.get("output"))),
                    observed=None
                    if observed is None
                    else _clean(f"{observed} {unit or ''}".strip()),
                )
            )
    return found


def _actuator_components(components: object, prefix: str = "") -> list[FailingCheck]:
    """Actuator ``components``, nested for composite indicators (at most MAX_DEPTH deep)."""
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
        status, unknown = _status(component)
        if status is None or status is Status.UP:
            continue
        details = component.get("details")
        output = details.get("error") if isinstance(details, dict) else None
        found.append(
            FailingCheck(
                name=_clean(path),
                status=status,
                output=_with(unknown, _short(output or details)),
                observed=None,
            )
        )
    return found


def _verdict(doc: dict[str, Any] | None) -> Verdict:
    if doc is None:
        return Verdict(Status.UP, None)
    top, unknown = _status(doc)
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
    if unknown is not None and status is top:
        # The body's own word decides, and it is not one healthmon knows.
        reason = _with(unknown, _short(doc.get("output")))
        return Verdict(status, reason, tuple(checks[:MAX_CHECKS]))
    return Verdict(status, _reason(doc, status, checks), tuple(checks[:MAX_CHECKS]))


def _k8s_verdict(body: bytes) -> Verdict | None:
    """Kubernetes verbose check lines; None when the body is not in that form (or too long)."""
    if len(body) > MAX_BODY or not body.lstrip().startswith((b"[+]", b"[-]")):
        return None
    lines = body.decode("utf-8", "replace").strip().splitlines()
    checks: list[FailingCheck] = []
    failed = False
    unknown: str | None = None
    for line in lines:
        line = line.strip()
        if not line.startswith("[") and (result := _K8S_RESULT.fullmatch(line)):
            failed |= result[1] == "failed"
            if result[1] not in ("passed", "failed"):
                unknown = unknown_status(result[1])
        match = _K8S_LINE.match(line)
        if match is None or match[1] == "+":
            continue
        if match[1] == "-":
            name, _, reason = match[2].partition(" failed")
            status, output = Status.DOWN, _short(reason.removeprefix(":").strip())
        else:  # "[?]name ...": a mark healthmon does not know
            name, _, rest = match[2].strip().partition(" ")
            status, output = Status.DEGRADED, _with(unknown_status(f"[{match[1]}]"), _short(rest))
        checks.append(
            FailingCheck(name=_clean(name.strip() or "check"), status=status, output=output)
        )
    checks.sort(key=lambda c: -_SEVERITY[c.status])
    if failed and not any(c.status is Status.DOWN for c in checks):
        return Verdict(Status.DOWN, _clean(lines[-1].strip()), tuple(checks[:MAX_CHECKS]))
    if checks:
        worst = checks[0].status
        return Verdict(worst, _reason({}, worst, checks), tuple(checks[:MAX_CHECKS]))
    if unknown is not None:
        return Verdict(Status.DEGRADED, unknown)
    return Verdict(Status.UP, None)


def read_body(body: bytes, content_type: str = "") -> Verdict:
    """The verdict of a 2xx answer's body; a body that is neither JSON nor checks says up.

    A body meant as JSON that cannot be read, or over a limit, is down with the reason.
    """
    # "[+]ping ok" starts like a JSON array, but no JSON starts with "[+" or "[-".
    if (verdict := _k8s_verdict(body)) is not None:
        return verdict
    try:
        return _verdict(_document(body, content_type))
    except _Unreadable as exc:
        return Verdict(Status.DOWN, str(exc))


def _reason(doc: dict[str, Any], status: Status, checks: list[FailingCheck]) -> str:
    if checks:
        worst = checks[0]
        detail = worst.output or worst.observed
        more = f" (+{len(checks) - 1} more)" if len(checks) > 1 else ""
        return f"{worst.name}: {worst.status_word}{': ' + detail if detail else ''}{more}"
    output = _short(doc.get("output"))
    return output or f"health status: {_short(doc.get('status'))}"


def read_answer(
    http_status: int,
    body: bytes,
    expected: tuple[tuple[int, int], ...],
    content_type: str = "",
) -> Verdict:
    """An HTTP answer: an unexpected status is down, whatever the body says."""
    if any(low <= http_status <= high for low, high in expected):
        return read_body(body, content_type)
    reason = f"HTTP {http_status}"
    doc = None
    if (verdict := _k8s_verdict(body)) is None:
        try:
            doc = _document(body, content_type)
        except _Unreadable:
            # The status code is the reason; an unreadable body adds nothing to it.
            return Verdict(Status.DOWN, reason)
        verdict = _verdict(doc)
    detail = verdict.reason if verdict.status is not Status.UP else None
    if detail is None and doc is not None:
        detail = _short(doc.get("output"))
    return Verdict(Status.DOWN, f"{reason}: {detail}" if detail else reason, verdict.checks)
