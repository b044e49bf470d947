"""Kubernetes-style verbose check bodies (``/readyz?verbose``) read as checks with reasons."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from hypothesis import given
from hypothesis import strategies as st

from healthmon.checker import CheckSpec
from healthmon.checks.http import check_once
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.health import MAX_CHECKS, Verdict, read_answer, read_body
from healthmon.models import FailingCheck, Status

EXPECTED = ((200, 299),)
FAILED = (
    b"[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n"
    b"[+]poststarthook/start-informers ok\n[-]informer-sync failed: not synced\n"
    b"readyz check failed\n"
)


def down(name: str, output: str | None) -> FailingCheck:
    return FailingCheck(name=name, status=Status.DOWN, output=output)


@pytest.mark.parametrize(
    ("http", "body", "status", "reason", "checks"),
    [
        (
            500,
            FAILED,
            Status.DOWN,
            "HTTP 500: etcd: fail: reason withheld (+1 more)",
            [down("etcd", "reason withheld"), down("informer-sync", "not synced")],
        ),
        (200, b"[+]ping ok\n[+]etcd ok\nreadyz check passed\n", Status.UP, None, []),
        (
            200,
            b"[+]ping ok\n[+]informer-sync excluded: ok\nlivez check passed\n",
            Status.UP,
            None,
            [],
        ),
        # A 200 that lists a failing check is down all the same: the worst check decides.
        (200, b"[+]ping ok\n[-]etcd failed\n", Status.DOWN, "etcd: fail", [down("etcd", None)]),
        (200, b"[+]ping ok\r\nreadyz check failed\r\n", Status.DOWN, "readyz check failed", []),
        (
            503,
            b"[-]shutdown failed: process is shutting down\n",
            Status.DOWN,
            "HTTP 503: shutdown: fail: process is shutting down",
            [down("shutdown", "process is shutting down")],
        ),
        # Starts like a JSON array, but is not JSON: still read as check lines.
        (200, b"[-]db failed: [1,2]\n", Status.DOWN, "db: fail: [1,2]", [down("db", "[1,2]")]),
        # A body that is no such list keeps its old meaning.
        (200, b"[1, 2]", Status.UP, None, []),
        (200, b"ok", Status.UP, None, []),
    ],
)
def test_verbose_check_bodies(
    http: int, body: bytes, status: Status, reason: str | None, checks: list[FailingCheck]
) -> None:
    """Each [-] line is a failing check with its reason; a failed summary alone is down."""
    verdict = read_answer(http, body, EXPECTED, "text/plain; charset=utf-8")
    assert verdict == Verdict(status, reason, tuple(checks))


def test_many_failing_lines_are_capped() -> None:
    """However many checks fail, at most MAX_CHECKS travel, and the reason counts the rest."""
    body = b"".join(b"[-]c%d failed: x\n" % i for i in range(MAX_CHECKS * 3))
    verdict = read_body(body, "text/plain")
    assert verdict.status is Status.DOWN
    assert len(verdict.checks) == MAX_CHECKS
    assert verdict.reason == f"c0: fail: x (+{MAX_CHECKS * 3 - 1} more)"


lines = st.lists(
    st.tuples(
        st.sampled_from(["[+]", "[-]", "", "readyz check failed", "["]), st.text(max_size=30)
    ),
    min_size=1,
    max_size=30,
)


@given(lines)
def test_any_check_list_is_a_verdict(parts: list[tuple[str, str]]) -> None:
    """Any text of check lines gives a verdict (never an exception); a [-] line makes it down."""
    body = "\n".join(prefix + rest for prefix, rest in parts).encode("utf-8", "surrogatepass")
    verdict = read_body(body, "text/plain")
    assert isinstance(verdict, Verdict)
    first = body.lstrip()
    if first.startswith((b"[+]", b"[-]")) and any(
        line.strip().startswith(b"[-]") for line in body.splitlines()
    ):
        assert verdict.status is Status.DOWN
        assert verdict.checks


@pytest.fixture
async def readyz() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        assert "verbose" in request.query
        return web.Response(status=500, body=FAILED, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/readyz", handler)
    server = TestServer(app, host="127.0.0.1", port=unused_port())
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_readyz_endpoint_through_the_http_check(
    readyz: str, session: aiohttp.ClientSession
) -> None:
    """An http service whose health_path is /readyz?verbose shows its failing checks by name."""
    service = ServiceSettings(name="api", url=readyz, health_path="/readyz?verbose")
    result = await check_once(session, CheckSpec.resolve(service, MonitorSettings()))
    assert result.status is Status.DOWN
    assert [c.name for c in result.checks] == ["etcd", "informer-sync"]
    assert result.reason == "HTTP 500: etcd: fail: reason withheld (+1 more)"
