"""Typed keys for what the application shares; no module globals."""

from __future__ import annotations

from aiohttp import web

from healthmon.archive import Archive
from healthmon.broker.base import Broker
from healthmon.checker import Monitor
from healthmon.config import LiveConfig
from healthmon.hub import Hub
from healthmon.metrics import Metrics
from healthmon.mocks import MockService
from healthmon.recorder import Recorder
from healthmon.reports import Summaries
from healthmon.status import StatusBoard

# What a reload may replace lives in a holder: an app is frozen once started.
CONFIG = web.AppKey("config", LiveConfig)
BROKER: web.AppKey[Broker] = web.AppKey("broker")
BOARD = web.AppKey("board", StatusBoard)
HUB = web.AppKey("hub", Hub)
MONITOR = web.AppKey("monitor", Monitor)
MOCKS: web.AppKey[dict[str, MockService]] = web.AppKey("mocks")
STATIC_VERSION = web.AppKey("static_version", str)
PROCESS_ROLES: web.AppKey[frozenset[str]] = web.AppKey("roles")
# The reloader's key lives in reload.py, beside its type (reload.py imports these).
METRICS = web.AppKey("metrics", Metrics)
# History: the store (when it opens), its writer (monitor role), its figures (ws role).
ARCHIVE = web.AppKey("archive", Archive)
RECORDER = web.AppKey("recorder", Recorder)
SUMMARIES = web.AppKey("summaries", Summaries)
