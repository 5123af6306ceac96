"""Full-text extraction cost: trafilatura on article pages, against the feed-text baseline.

Run with ``make bench``. The machine is shared and noisy, so the figure that matters is
the ratio to the baseline measured in the same run: ``html_to_text`` over the same page
(what newswatch did before full text), i.e. how much dearer an article's body is than
tag-stripping its page.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.core.article import Article
from crawler.process.extract import extract, html_to_text
from tests.newssite import FILLER, Story, article_html

PAGES = 200
ROUNDS = 5


def pages() -> list[str]:
    long_body = " ".join(FILLER * 4)
    return [article_html(Story(f"/news/{n}", f"Story {n}", f"{long_body} Report {n}."))
            for n in range(PAGES)]


def timed(work: Callable[[], object]) -> float:
    best = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        work()
        best.append(time.perf_counter() - start)
    return statistics.median(best)


def main() -> None:
    html = pages()
    now = datetime.now(UTC)
    articles = [Article(source="bench", url=f"http://127.0.0.2/news/{n}",
                        link=f"http://127.0.0.2/news/{n}", title=f"Story {n}", page_html=h,
                        final_url=f"http://127.0.0.2/news/{n}") for n, h in enumerate(html)]
    baseline = timed(lambda: [html_to_text(h) for h in html])
    full = timed(lambda: [extract(a, now) for a in articles])
    print(f"{PAGES} article pages of {statistics.mean(len(h) for h in html) / 1024:.1f} KiB, "
          f"median of {ROUNDS} rounds")
    print(f"baseline html_to_text: {baseline / PAGES * 1000:.2f} ms/page")
    print(f"full-text extract:     {full / PAGES * 1000:.2f} ms/page")
    print(f"ratio: {full / baseline:.1f}x the baseline")


if __name__ == "__main__":
    main()
