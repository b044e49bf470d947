"""Run ``healthmon`` on a chosen event loop, stopping it when stdin closes.

healthmon itself always runs on asyncio's default loop (``asyncio.run`` in
``healthmon.cli``); this shim installs uvloop's policy first to measure what
uvloop would change. Tying the server's life to the benchmark's pipe means a
benchmark that dies, even by SIGKILL, leaves no server behind.

    python -m bench.serve --loop uvloop -- --config bench.toml
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading

from bench.procfs import raise_open_files_limit


def _stop_on_eof() -> None:
    # os.read, not sys.stdin: a daemon thread holding the buffered reader's
    # lock would abort the interpreter at exit.
    while os.read(0, 4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("healthmon_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    raise_open_files_limit()
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    threading.Thread(target=_stop_on_eof, daemon=True).start()

    from healthmon.cli import main as healthmon_main

    argv = [a for a in args.healthmon_args if a != "--"]
    return healthmon_main(argv)


if __name__ == "__main__":
    sys.exit(main())
