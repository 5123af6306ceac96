"""Print the theme phrasings of tests/data/themes.yaml as a markdown table: each phrasing,
whether it should match its theme, and what the shipped watchlists make of it (every
item matched, or why its theme did not count). Run: ``python scripts/theme_table.py``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml import YAML

from crawler.config import load_config
from crawler.core.article import Article
from crawler.process.match import Explanation, Matcher

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tests" / "data" / "themes.yaml"
SHIPPED = ROOT / "config"
WATCHLIST = "joint-declaration-themes"


def phrasings(path: Path = TABLE) -> Iterator[tuple[str, str, bool]]:
    """(theme, phrasing, whether it should match) for every row of the table."""
    themes = YAML(typ="safe").load(path.read_text(encoding="utf-8"))["themes"]
    for theme, rows in themes.items():
        for key, expected in (("match", True), ("no match", False)):
            for phrasing in rows.get(key) or ():
                yield theme, phrasing, expected


def explain(matcher: Matcher, phrasing: str) -> Explanation:
    """A phrasing matched as an article's body."""
    return matcher.explain(Article("table", "", "", "", text=phrasing))


def table(matcher: Matcher) -> list[str]:
    lines = ["| theme | phrasing | should match | matched | ok |", "|---|---|---|---|---|"]
    for theme, phrasing, expected in phrasings():
        found = explain(matcher, phrasing)
        names = sorted({m.watch for m in found.matches})
        why = [m.reason for m in found.misses if m.watch == theme]
        shown = ", ".join(names) or "—"
        if theme not in names and why:
            shown += f" (not {theme}: {why[0]})"
        ok = (theme in names) is expected
        lines.append(f"| {theme} | {phrasing} | {'yes' if expected else 'no'} "
                     f"| {shown.replace('|', '/')} | {'✓' if ok else '✗'} |")
    return lines


def main() -> int:
    print("\n".join(table(Matcher(load_config(SHIPPED).watchlists))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
