"""The import graph of a checkout: import circles and the edges between packages.

``python scripts/import_graph.py [CHECKOUT]`` (default: this one). It backs the figures
in closing notes and docs/architecture.md; `make lint` (import-linter) enforces the rule.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import grimp


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def package(module: str) -> str:
    """``crawler.store.sqlite.base`` → ``crawler.store``; ``alerts.x`` → ``alerts``."""
    parts = module.split(".")
    if parts[0] == "alerts":
        return "alerts"
    return ".".join(parts[:2]) if len(parts) > 2 else module


def main(checkout: Path) -> None:
    sys.path.insert(0, str(checkout))
    graph = grimp.build_graph("crawler", "alerts")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    print(f"modules: {len(edges)}, import edges: {sum(len(v) for v in edges.values())}")
    groups = circles(edges)
    print(f"import circles: {len(groups)}")
    for group in groups:
        print("  ", " <-> ".join(group))
    between = collections.Counter((package(a), package(b)) for a, bs in edges.items()
                                  for b in bs if package(a) != package(b))
    print("edges between packages:")
    for (source, target), count in sorted(between.items()):
        print(f"   {source} -> {target} ({count})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent.parent).resolve())
