"""One numbered migration runner for any backend.

A backend gives its schema as numbered ``Step``s (1, 2, 3, …: a name, and a function
applying that version to the backend's own handle, SQL of its dialect) and a
``MigrationTarget`` that reads and writes the ``migrations`` table (``version``,
``name``, ``applied_at``), runs a step in a write transaction and copies the database
aside. The runner decides the rest, the same for every backend: keep a copy before
changing an existing schema, refuse a schema newer than the steps, apply each missing
step in order in its own transaction (re-reading the version inside it, so two
processes opening one database apply a step once).

Append a step to change the schema; never edit or renumber one that was released.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from crawler.core.errors import SchemaTooNewError

H = TypeVar("H")
H_contra = TypeVar("H_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class Step(Generic[H]):
    """Schema version ``version``: what it adds, and how."""

    version: int
    name: str
    apply: Callable[[H], None]


class MigrationTarget(Protocol[H]):
    """What the runner needs of a backend."""

    location: str

    def applied(self) -> int:
        """The highest version in ``migrations`` (0 for an empty database)."""

    def transaction(self) -> AbstractContextManager[H]:
        """A write transaction, taking the lock up front; creates ``migrations``."""

    def record(self, handle: H, step: Step[H], at: datetime) -> None:
        """Add ``step`` to ``migrations`` inside the transaction."""

    def keep_copy(self, version: int) -> None:
        """Copy the database aside, as it is at ``version``, before it changes."""


def check_numbering(steps: Sequence[Step[H]]) -> None:
    """Steps are numbered 1, 2, 3, … with no gap: the number is the schema version."""
    numbers = [s.version for s in steps]
    if numbers != list(range(1, len(steps) + 1)):
        raise ValueError(f"migration steps must be numbered 1..{len(steps)}: {numbers}")


def migrate(target: MigrationTarget[H], steps: Sequence[Step[H]],
            now: Callable[[], datetime]) -> int:
    """Bring the schema up to the last step; returns the version it was at."""
    check_numbering(steps)
    was = target.applied()
    newest = len(steps)
    if was > newest:
        raise _too_new(target, was, newest)
    if 0 < was < newest:
        target.keep_copy(was)
    for step in steps[was:]:
        with target.transaction() as handle:
            applied = target.applied()
            if applied > newest:
                raise _too_new(target, applied, newest)
            if applied >= step.version:
                continue  # another process applied it meanwhile
            step.apply(handle)
            target.record(handle, step, now())
    return was


def _too_new(target: MigrationTarget[H], version: int, newest: int) -> SchemaTooNewError:
    return SchemaTooNewError(
        f"database {target.location} has schema version {version}, newer than this "
        f"newswatch knows ({newest}): upgrade newswatch")
