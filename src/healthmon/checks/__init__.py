"""Kinds of check, one module each; ``check_for`` makes the one a service's spec asks for.

``base`` holds what they share (``CheckSpec``, the ``Check`` protocol, ``Wake``,
the result); ``http``, ``tcp`` and ``grpc`` are the kinds. grpc is imported
only when a grpc service is configured, so its extra stays optional.
"""

from __future__ import annotations

import aiohttp

from healthmon.checks.base import Check, CheckSpec
from healthmon.checks.http import HttpCheck
from healthmon.checks.tcp import TcpCheck

__all__ = ["Check", "CheckSpec", "check_for"]


def check_for(spec: CheckSpec, session: aiohttp.ClientSession) -> Check:
    """A new check of ``spec``'s kind; its owner closes it (``aclose``)."""
    if spec.kind == "tcp":
        return TcpCheck(spec)
    if spec.kind == "grpc":
        from healthmon.checks.grpc import GrpcCheck

        return GrpcCheck(spec)
    return HttpCheck(spec, session)
