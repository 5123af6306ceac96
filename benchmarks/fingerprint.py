"""Fingerprinting alone: ``stories.fingerprint`` over the archive benchmark's articles.

Not part of CI. Run with ``python benchmarks/fingerprint.py`` (``--help``). The texts are
extracted and put in comparable form first (``search.document``, as the pipeline does),
so only the signature and band keys are timed, in CPU time (the machine may be shared);
the best of ``--rounds`` is reported.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from benchmarks.archive import generate
from crawler.process import search, stories
from crawler.process.extract import extract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    now = datetime.now(UTC)
    documents = [search.document(extract(a, now)) for a in generate(args.articles, args.seed)]
    best = float("inf")
    for _ in range(args.rounds):
        started = time.process_time()
        for document in documents:
            stories.fingerprint(document)
        best = min(best, time.process_time() - started)
    print(f"fingerprint: {args.articles} articles, {args.articles / best:,.0f} articles/s "
          f"({best / args.articles * 1e6:.0f} µs each, best of {args.rounds})")


if __name__ == "__main__":
    main()
