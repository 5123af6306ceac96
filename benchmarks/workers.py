"""Workers: ``newswatch once --workers 2`` against ``--workers 0`` (in process), over
the local feeds of ``make bench-ingest``, with a 10,000-item watchlist.

Target (issue #14): with two worker processes, on a two-core machine, ingest runs at
least 1.6 times as fast as in process. Not part of CI (``tests/test_workers.py`` runs it
tiny, in the slow tier). Run with ``make bench-workers`` (or ``python -m
benchmarks.workers --help``).

The feeds, their server and the config are ``benchmarks/ingest.py``'s: ``--feeds`` RSS
feeds of ``--items`` news-length items each on 127.0.0.1 (full text off, no delay), one
watchlist of ``--watch`` generated people, alerts planned and kept but not sent. Then,
for each number of workers in turn, ``--runs`` times (the best run of each counts):

- **whole**: ``newswatch once --workers N`` in a child process on a fresh database,
  timed from its start to its exit (interpreter, config, workers and matchers included);
- **startup**: the same over empty feeds: what a pass costs before its first article.
  The *ingest* rate divides the articles by the difference of the two.

The machine is shared: run it when ``uptime`` shows little load, and read the ratios,
measured in the same run, rather than the rates.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.ingest import config_dir, feeds, run_once, serve

TARGET = 1.6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--items", type=int, default=600, help="items per feed")
    parser.add_argument("--watch", type=int, default=10_000, help="watch items")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--runs", type=int, default=2, help="runs of each (best counts)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)

    documents, pool = feeds(args.feeds, args.items, args.watch, args.seed)
    print(f"{args.feeds} feeds x {args.items} items "
          f"({sum(map(len, documents)) / 1e6:.1f} MB), {args.watch} watch items, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)
    best: dict[tuple[int, str], float] = {}
    stored: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp, serve(documents) as port:
        for run in range(args.runs):
            for workers in (0, args.workers):
                for kind, path in (("whole", "f"), ("startup", "empty")):
                    config = config_dir(Path(tmp), f"{kind}-{workers}-{run}", port,
                                        args.feeds, path, pool)
                    seconds, report = run_once(config, "--workers", str(workers))
                    if kind == "whole":
                        stored[workers] = sum(s["new"] for s in report["sources"])
                    best[workers, kind] = min(best.get((workers, kind), seconds), seconds)
                    print(f"  run {run + 1}, --workers {workers}, {kind}: {seconds:.2f} s",
                          flush=True)
    articles = stored[0]
    if stored[args.workers] != articles:
        raise SystemExit(f"the runs stored different counts: {stored}")

    def rates(workers: int) -> tuple[float, float]:
        whole, startup = best[workers, "whole"], best[workers, "startup"]
        return articles / whole, articles / max(whole - startup, 1e-9)

    (whole_0, ingest_0), (whole_n, ingest_n) = rates(0), rates(args.workers)
    print(f"\n{articles} articles stored by each, load {os.getloadavg()[0]:.2f}")
    print(f"{'':16}{'whole once':>14}{'ingest':>14}")
    print(f"{'--workers 0':16}{whole_0:>10.0f} a/s{ingest_0:>10.0f} a/s")
    print(f"{f'--workers {args.workers}':16}{whole_n:>10.0f} a/s{ingest_n:>10.0f} a/s")
    print(f"{'ratio':16}{whole_n / whole_0:>13.2f}x{ingest_n / ingest_0:>13.2f}x"
          f"   (target: ingest >= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
