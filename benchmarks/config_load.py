"""Config load: reading a 10,000-item watchlist, the fast way and the round-trip way.

Not part of CI. Run with ``make bench-config`` (or ``python -m benchmarks.config_load
--help``).

It writes the config ``benchmarks/ingest.py`` writes (``--watch`` generated people with
spelling variants and Dari aliases), once as JSON (as the ingest benchmark writes it)
and once in block style (as a person writes it), and times, best of ``--runs``:

- **load_config**: the whole config directory loaded and validated;
- **read_yaml**: the watchlist file read as newswatch reads it (libyaml's nodes walked);
- **round trip**: the same file read by the round-trip reader alone (ruamel's
  pure-Python ``YAML(typ='rt')``, as before issue #14);
- floors: libyaml composing the nodes and nothing else, and ``json.loads`` of the JSON.

Absolute times drift on a shared machine; the ratios between readers measured in the
same run do not.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from benchmarks.ingest import config_dir
from benchmarks.matching import people
from crawler.config import load_config
from crawler.config.yamlfile import read_round_trip, read_yaml


def NOWHERE(_: Any) -> bool:
    """No value of the watchlist reads the environment."""
    return False


def best(runs: int, work: Callable[[], Any]) -> float:
    """The fastest of ``runs`` timings of ``work``, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watch", type=int, default=10_000, help="watched people")
    parser.add_argument("--runs", type=int, default=3, help="timings per reader (best kept)")
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    pool = people(args.watch, random.Random(args.seed))
    result: dict[str, Any] = {"watch_items": args.watch}
    with tempfile.TemporaryDirectory(prefix="newswatch-config-") as tmp:
        root = Path(tmp)
        directory = config_dir(root, "config", 1, 10, "f", pool)
        watchlists = directory / "watchlists.yaml"
        as_json = watchlists.read_text()
        block = io.StringIO()
        YAML().dump(json.loads(as_json), block)
        print(f"config load: {args.watch:,} watch items, best of {args.runs}")
        print(f"{'':34}{'seconds':>9}{'× round trip':>14}{'× libyaml':>11}")
        for style, text in (("json", as_json), ("block", block.getvalue())):
            watchlists.write_text(text)
            timed = {
                "load_config": best(args.runs, partial(load_config, directory)),
                "read_yaml": best(args.runs, partial(read_yaml, watchlists,
                                                     "watchlists.yaml", [])),
                "round_trip": best(args.runs, partial(read_round_trip, text,
                                                      "watchlists.yaml", [], NOWHERE)),
                "libyaml_compose": best(args.runs, partial(
                    YAML(typ="safe", pure=False).compose, text)),
            }
            if style == "json":
                timed["json_loads"] = best(args.runs, partial(json.loads, text))
            print(f"{style} ({len(text.encode()) / 1e6:.1f} MB):")
            for name, seconds in timed.items():
                print(f"  {name:32}{seconds:>9.3f}{timed['round_trip'] / seconds:>14.1f}"
                      f"{seconds / timed['libyaml_compose']:>11.2f}")
            result[style] = {k: round(v, 3) for k, v in timed.items()} | {
                "speedup_read_yaml": round(timed["round_trip"] / timed["read_yaml"], 1),
                "read_yaml_to_libyaml": round(timed["read_yaml"] / timed["libyaml_compose"],
                                              2)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
