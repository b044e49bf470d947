"""healthmon's benchmark suite: ``python -m bench [--quick]``.

The server runs as its own process and is driven from separate client
processes over loopback; results go to ``bench/results/`` as a table on the
terminal and a JSON file. See ``docs/benchmarks.md``.
"""
