"""Run ``healthmon`` (``--loop`` chooses asyncio or uvloop), stopping it when stdin closes.

Tying the server's life to the benchmark's pipe means a benchmark that dies,
even by SIGKILL, leaves no server behind.

    python -m bench.serve --config bench.toml --loop uvloop
"""

from __future__ import annotations

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
    # healthmon leaves RLIMIT_NOFILE alone; 10,000 clients need more than 1,024.
    raise_open_files_limit()
    threading.Thread(target=_stop_on_eof, daemon=True).start()

    from healthmon.cli import main as healthmon_main

    return healthmon_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
