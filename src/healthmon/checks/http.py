"""The http kind: a service's health URL over HTTP/1.1, plain or TLS.

Plain ``http://`` goes through ``healthmon.probe.Probe`` (one kept-alive
connection per service); ``https://`` through aiohttp, which keeps TLS. The
answer is read by ``healthmon.health``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import structlog
import yarl

from healthmon.checks.base import CheckResult, CheckSpec, Verdict, Wake, result_of
from healthmon.health import MAX_BODY as BODY_LIMIT
from healthmon.health import no_answer, read_answer
from healthmon.models import Status
from healthmon.probe import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    Answer,
    Probe,
    ProbeError,
    connect_failure,
)

log = structlog.get_logger(__name__)

ACCEPT = "application/health+json, application/json;q=0.9, */*;q=0.1"
USER_AGENT = "healthmon"
# The health body limit (64 KiB, healthmon.health.MAX_BODY). Checks read one
# byte more, so a longer body shows as one: DOWN "health body over 64 KiB".
MAX_BODY = BODY_LIMIT


def probe_for(spec: CheckSpec, on_idle_lost: Callable[[], None] | None = None) -> Probe | None:
    """The keep-alive probe that checks this service, or None where aiohttp does.

    aiohttp keeps TLS (certificates, ``verify_tls``); plain ``http://`` goes
    through the much cheaper ``Probe`` (the config refuses credentials in URLs).
    ``on_idle_lost`` is called when the service closes the idle connection.
    """
    if yarl.URL(spec.url).scheme != "http":
        return None
    headers = (("User-Agent", USER_AGENT), ("Accept", ACCEPT), *spec.headers)
    return Probe(spec.url, spec.method, headers, MAX_BODY + 1, on_idle_lost)


class HttpCheck:
    """An http(s) check: plain http through a kept-alive ``Probe``, https through aiohttp.

    When the service closes the probe's idle connection (its process died, or it
    stopped, or only its keep-alive timeout ran out) the loop is woken to check
    again at once: a crash is then seen within milliseconds, not at the next check.
    """

    def __init__(self, spec: CheckSpec, session: aiohttp.ClientSession) -> None:
        self.spec = spec
        self.wake = Wake()
        self._session = session
        self._probe = probe_for(spec, self.wake.recheck)

    async def run(self) -> CheckResult:
        return await check_once(self._session, self.spec, self._probe)

    async def aclose(self) -> None:
        if self._probe is not None:
            await self._probe.aclose()


async def check_once(
    session: aiohttp.ClientSession, spec: CheckSpec, probe: Probe | None = None
) -> CheckResult:
    """Check one service's health URL; the result is data, never an exception.

    ``probe`` is the service's kept-alive connection (see ``probe_for``);
    without one a plain-http check opens a connection for this check only.
    """
    one_shot = probe_for(spec) if probe is None else None
    # perf_counter, not loop.time(): uvloop's clock has millisecond steps.
    started = time.perf_counter()
    try:
        verdict = await _ask(session, spec, probe or one_shot)
        latency_ms = (time.perf_counter() - started) * 1000
    finally:
        if one_shot is not None:
            await one_shot.aclose()
    return result_of(spec, verdict, latency_ms)


async def _ask(session: aiohttp.ClientSession, spec: CheckSpec, probe: Probe | None) -> Verdict:
    """The verdict of one check; every exception but cancellation becomes a DOWN verdict."""
    try:
        async with asyncio.timeout(spec.timeout_ms / 1000):
            if probe is not None:
                answer = await probe.fetch()
            else:
                try:
                    answer = await _fetch(session, spec)
                except aiohttp.ServerDisconnectedError:
                    # A kept-alive connection the server had already closed:
                    # that says nothing about the service, so ask once more.
                    answer = await _fetch(session, spec)
    except TimeoutError:
        return no_answer(f"no answer within {spec.timeout_ms} ms")
    except ProbeError as exc:
        return no_answer(str(exc))
    except aiohttp.ClientConnectorCertificateError as exc:
        return no_answer(f"TLS certificate not trusted: {exc.certificate_error}")
    except aiohttp.ClientConnectorError as exc:
        return no_answer(connect_failure(exc.os_error))
    except aiohttp.ClientResponseError as exc:
        if isinstance(exc.__cause__, aiohttp.http_exceptions.HttpProcessingError):
            # aiohttp could not parse the answer (its status 400 is its own, not the service's).
            return Verdict(Status.DOWN, _invalid_http(exc.message))
        return Verdict(Status.DOWN, _describe(exc))
    except aiohttp.ClientError as exc:
        return no_answer(_describe(exc))
    except OSError as exc:
        return no_answer(f"network error: {exc.strerror or exc}")
    except Exception as exc:  # CancelledError is no Exception: cancelling still cancels
        log.error("check.failed", service=spec.name, exc_info=True)
        return Verdict(Status.DOWN, f"check failed: {_describe(exc)}")
    try:
        return read_answer(answer.status, answer.body, spec.expected_status, answer.content_type)
    except Exception as exc:
        # read_answer is total; should a body still break it, the card says so.
        log.error("check.unreadable_body", service=spec.name, exc_info=True)
        return Verdict(Status.DOWN, f"unreadable health body: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:200]


def _invalid_http(message: str) -> str:
    """aiohttp's parser message, first clause only (it goes on to quote the bytes)."""
    first = message.partition(":")[0].strip()
    if first.startswith("Got more than "):
        # aiohttp's max_line_size / max_field_size (8190 bytes by default).
        size = first.removeprefix("Got more than ").partition(" ")[0]
        return f"invalid HTTP response: a status or header line over {size} bytes"
    return f"invalid HTTP response: {first[:100]}"


async def _fetch(session: aiohttp.ClientSession, spec: CheckSpec) -> Answer:
    headers = {"Accept": ACCEPT, **dict(spec.headers)}
    async with session.request(
        # A redirect is an answer: a health URL that redirects (to a login
        # page, say) is misconfigured, and expected_status may ask for 3xx.
        spec.method,
        spec.url,
        headers=headers,
        ssl=spec.verify_tls,
        allow_redirects=False,
    ) as response:
        # The Probe's head limits, on what aiohttp (within its own) accepted.
        if len(response.raw_headers) > MAX_HEADERS:
            raise ProbeError(f"more than {MAX_HEADERS} response headers")
        if sum(len(k) + len(v) for k, v in response.raw_headers) > MAX_HEAD_BYTES:
            raise ProbeError(f"response headers over {MAX_HEAD_BYTES // 1024} KiB")
        chunks: list[bytes] = []
        size = 0
        # content.read(n) returns what has arrived, so read until the end or one
        # byte over the limit (which shows the body is over it).
        while spec.method != "HEAD" and size <= MAX_BODY:
            chunk = await response.content.read(MAX_BODY + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return Answer(response.status, b"".join(chunks), response.headers.get("Content-Type", ""))
