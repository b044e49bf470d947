"""Typed keys for what the application shares; no module globals."""

from __future__ import annotations

from aiohttp import web

from healthmon.broker.base import Broker
from healthmon.checker import Monitor
from healthmon.config import Settings
from healthmon.hub import Hub
from healthmon.mocks import MockService
from healthmon.status import StatusBoard

SETTINGS = web.AppKey("settings", Settings)
BROKER: web.AppKey[Broker] = web.AppKey("broker")
BOARD = web.AppKey("board", StatusBoard)
HUB = web.AppKey("hub", Hub)
MONITOR = web.AppKey("monitor", Monitor)
MOCKS: web.AppKey[dict[str, MockService]] = web.AppKey("mocks")
STATIC_VERSION = web.AppKey("static_version", str)
PROCESS_ROLES: web.AppKey[frozenset[str]] = web.AppKey("roles")
