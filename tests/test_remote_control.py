"""Control endpoints seen from another host: a network namespace of our own."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestServer

from healthmon.app import create_app
from tests.support import make_settings

CLIENT = """
import json, sys, urllib.request, urllib.error
url, token = sys.argv[1], sys.argv[2]
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token
request = urllib.request.Request(url, data=b'{"mode":"down"}', headers=headers, method="POST")
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(json.dumps([response.status, json.load(response)]))
except urllib.error.HTTPError as error:
    print(json.dumps([error.code, json.load(error)]))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def remote_host() -> Iterator[tuple[str, str]]:
    """A test host in a namespace of our own, joined to this one by a veth pair.

    Yields (namespace, address of this side). Needs root and iproute2, which
    CI has; elsewhere it says so rather than pass.
    """
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI"):
            pytest.fail("this test needs root and iproute2 (ip netns) in CI")
        pytest.skip("needs root and iproute2 to create a network namespace (runs in CI)")
    tag = secrets.token_hex(3)
    octet = 1 + int(tag, 16) % 250
    namespace, here, there = f"hm{tag}", f"hm{tag}a", f"hm{tag}b"
    local, remote = f"10.249.{octet}.1", f"10.249.{octet}.2"
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", namespace)
        _ip("addr", "add", f"{local}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", namespace, "addr", "add", f"{remote}/30", "dev", there)
        _ip("-n", namespace, "link", "set", there, "up")
        yield namespace, local
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=10, check=False)
        _ip("netns", "del", namespace)


async def _post_from(namespace: str, url: str, token: str = "") -> tuple[int, dict[str, str]]:
    process = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        namespace,
        sys.executable,
        "-c",
        CLIENT,
        url,
        token,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    status, body = json.loads(out)
    return status, body


@pytest.fixture(params=[None, "s3cret-token"], ids=["no-token", "token"])
async def remote_system(
    request: pytest.FixtureRequest, remote_host: tuple[str, str]
) -> AsyncIterator[tuple[str, str, str | None]]:
    namespace, address = remote_host
    settings = make_settings(host=address, control_token=request.param)
    server = TestServer(create_app(settings), host=address, port=settings.web.port)
    await server.start_server()
    try:
        yield namespace, f"http://{address}:{settings.web.port}", request.param
    finally:
        await server.close()


async def test_remote_caller_needs_the_token(remote_system: tuple[str, str, str | None]) -> None:
    """From another host, controls are refused without the token and obeyed with it."""
    namespace, base, token = remote_system
    status, body = await _post_from(namespace, f"{base}/api/mocks/auth")
    assert status == 403
    assert "loopback callers only" in body["error"]
    if token is None:
        assert "control_token" in body["error"]
        return
    status, body = await _post_from(namespace, f"{base}/api/mocks/auth", token="wrong")
    assert status == 403
    status, body = await _post_from(namespace, f"{base}/api/mocks/auth", token=token)
    assert (status, body) == (200, {"name": "auth", "mode": "down"})
