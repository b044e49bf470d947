"""Property tests: reading a health body is total, whatever the service sends."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from healthmon.health import MAX_BODY, STATUS_WORDS, Verdict, read_answer, read_body
from healthmon.models import Status

WORDS = ["pass", "ok", "up", "warn", "fail", "error", "down", "UP", "DOWN", "OUT_OF_SERVICE"]
KEYS = [
    "status",
    "checks",
    "components",
    "details",
    "output",
    "observedValue",
    "observedUnit",
    "componentId",
    "error",
]
CONTENT_TYPES = ["", "application/json", "application/health+json; charset=utf-8", "text/plain"]
EXPECTED = ((200, 299),)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included, as Python's json accepts them
    | st.text(max_size=20)
    | st.sampled_from(WORDS)
    # Lone surrogates: valid as JSON escapes, not encodable as UTF-8.
    | st.sampled_from(["\ud800", "x\udfff", "\udc80\ud800"])
)
keys = st.sampled_from(KEYS) | st.text(max_size=10)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)
# health+json and Actuator shapes, with any values where the formats expect words.
words = st.sampled_from(WORDS) | documents
entries = st.fixed_dictionaries(
    {"status": words},
    optional={
        "observedValue": scalars | documents,
        "observedUnit": scalars | documents,
        "componentId": scalars | documents,
        "output": scalars | documents,
    },
)
health_json = st.fixed_dictionaries(
    {"status": words},
    optional={
        "checks": st.dictionaries(st.text(max_size=10), st.lists(entries, max_size=3) | entries),
        "details": documents,
        "output": documents,
    },
)
components = st.recursive(
    st.fixed_dictionaries({"status": words}, optional={"details": documents}),
    lambda inner: st.fixed_dictionaries(
        {"components": st.dictionaries(st.text(max_size=10), inner, max_size=3)}
    ),
    max_leaves=8,
)
actuator = st.fixed_dictionaries(
    {"status": words},
    optional={
        "components": st.dictionaries(st.text(max_size=10), components | documents),
        "details": documents,
    },
)


def assert_shown(verdict: Verdict) -> None:
    """A verdict a card can show: a known status, a reason when not up, and valid JSON out."""
    assert isinstance(verdict, Verdict)
    assert verdict.status in (Status.UP, Status.DEGRADED, Status.DOWN)
    assert (verdict.reason is None) == (verdict.status is Status.UP)
    # What the monitor publishes must serialise: no lone surrogates, no odd types.
    if verdict.reason is not None:
        verdict.reason.encode("utf-8")
    for check in verdict.checks:
        check.model_dump_json()


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512), content_type=st.sampled_from(CONTENT_TYPES))
def test_any_bytes_give_a_verdict(body: bytes, content_type: str) -> None:
    """Any bytes as a 2xx body give a verdict a card can show, never an exception."""
    assert_shown(read_body(body, content_type))


@settings(max_examples=200, deadline=None)
@given(
    doc=documents | health_json | actuator,
    http=st.integers(100, 599),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_any_json_gives_a_verdict(doc: object, http: int, content_type: str) -> None:
    """Any JSON structure, health+json and Actuator shapes included, gives a showable verdict."""
    body = json.dumps(doc).encode()
    verdict = read_answer(http, body, EXPECTED, content_type)
    assert_shown(verdict)
    if not 200 <= http <= 299:
        assert verdict.status is Status.DOWN


@settings(max_examples=200, deadline=None)
@given(
    doc=documents | health_json | actuator,
    cut=st.integers(min_value=1),
    junk=st.binary(max_size=8),
)
def test_broken_json_objects_are_never_up(doc: object, cut: int, junk: bytes) -> None:
    """An object cut short (or with junk after it) is DOWN with a reason, never guessed up."""
    body = json.dumps({"status": "fail", "doc": doc}).encode()
    broken = body[: len(body) - 1 - cut % (len(body) - 1)] + junk
    try:
        json.loads(broken)
    except ValueError:
        verdict = read_body(broken)
        assert verdict.status is Status.DOWN
        assert verdict.reason is not None


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(1, 3000), opener=st.sampled_from(["[", '{"a":']), pad=st.integers(0, 8))
def test_nesting_is_bounded(depth: int, opener: str, pad: int) -> None:
    """Nesting up to 32 levels is read; deeper is DOWN with the limit, never a RecursionError."""
    close = "]" if opener == "[" else "}"
    inner = '{"status":"pass"}'
    body = (" " * pad + opener * (depth - 1) + inner + close * (depth - 1)).encode()
    verdict = read_body(body, "application/json")
    if len(body) > MAX_BODY:
        assert verdict.reason == "health body over 64 KiB"
    elif depth > 32:
        assert (verdict.status, verdict.reason) == (
            Status.DOWN,
            "health body nested deeper than 32 levels",
        )
    else:
        assert verdict.status is Status.UP


# -- status words healthmon does not know ----------------------------------------

KNOWN_WORDS = set(STATUS_WORDS)


def _unknown(value: object) -> bool:
    return not (isinstance(value, str) and value.strip().lower() in KNOWN_WORDS)


unknown_words = (
    st.text(max_size=20)
    | st.sampled_from(["unhealthy", "failed", "CRITICAL", "healthy", "green", "OK!", "passed"])
    | st.none()
    | st.booleans()
    | st.integers()
    | st.lists(st.text(max_size=3), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
).filter(_unknown)
passing = st.sampled_from(["pass", "ok", "up", "UP", " Pass "])


@settings(max_examples=200, deadline=None)
@given(
    word=unknown_words,
    extra=st.fixed_dictionaries(
        {},
        optional={"output": st.text(max_size=20), "checks": st.just({"db": [{"status": "pass"}]})},
    ),
)
def test_an_unknown_top_status_is_never_up(word: object, extra: dict[str, object]) -> None:
    """A 2xx body whose status is a word healthmon does not know is degraded, with the word."""
    verdict = read_body(json.dumps({"status": word, **extra}).encode(), "application/json")
    assert_shown(verdict)
    assert verdict.status is Status.DEGRADED
    assert verdict.reason is not None
    assert verdict.reason.startswith("unknown status ")


@settings(max_examples=200, deadline=None)
@given(word=unknown_words, top=passing, name=st.text(min_size=1, max_size=8))
def test_an_unknown_word_in_a_check_is_never_up(word: object, top: str, name: str) -> None:
    """An unknown word in a health+json check entry or an Actuator component is never up."""
    bodies = [
        {"status": top, "checks": {name: [{"status": "pass"}, {"status": word}]}},
        {"status": top, "components": {name: {"status": word}}},
        {"status": top, "components": {"outer": {"components": {name: {"status": word}}}}},
    ]
    for body in bodies:
        verdict = read_body(json.dumps(body).encode())
        assert_shown(verdict)
        assert verdict.status is Status.DEGRADED, body
        assert verdict.checks[0].output is not None
        assert verdict.checks[0].output.startswith("unknown status ")


@settings(max_examples=100, deadline=None)
@given(
    word=st.from_regex(r"[a-z]{1,10}", fullmatch=True).filter(
        lambda w: w not in ("passed", "failed")
    ),
    mark=st.sampled_from("?*x!~"),
)
def test_an_unknown_word_in_verbose_checks_is_never_up(word: str, mark: str) -> None:
    """Kubernetes verbose checks with an unknown mark or result word are never up."""
    result = read_body(f"[+]ping ok\n[+]etcd ok\nreadyz check {word}\n".encode())
    assert (result.status, result.reason) == (Status.DEGRADED, f"unknown status '{word}'")
    marked = read_body(f"[+]ping ok\n[{mark}]etcd {word}\nreadyz check passed\n".encode())
    assert marked.status is Status.DEGRADED
    assert marked.reason == f"etcd: warn: unknown status '[{mark}]': {word}"
