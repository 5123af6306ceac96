"""The progress bar of long commands (sources test, sources import --test, backtest,
once): on stderr, and only on a terminal, so pipes, logs, cron mail and ``--json`` stay
clean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

Advance = Callable[[str], None]
"""One step done; its text (a source's name) shows beside the bar."""


@contextmanager
def progress(label: str, total: int, *, quiet: bool = False) -> Iterator[Advance]:
    """A bar of ``total`` steps, gone when the block ends. Nothing is drawn when ``quiet``
    (``--json``), when there is nothing to count, or when stderr is no terminal. The
    console is made here, not at import, so that it sees the terminal (and rich's
    ``FORCE_COLOR`` / ``TTY_COMPATIBLE``) as they are when the command runs."""
    console = Console(stderr=True)
    if quiet or total <= 0 or not console.is_terminal:
        yield lambda _: None
        return
    with Progress(TextColumn(label, markup=False), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}", markup=False), console=console,
                  transient=True) as bar:
        task = bar.add_task("", total=total)
        yield lambda done: bar.update(task, advance=1, description=done)
