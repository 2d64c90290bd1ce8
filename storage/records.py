"""Turning asyncpg records into the frozen dataclasses repositories return.

Repositories select whole rows; a later migration may add columns, so conversion keeps only
the fields the dataclass declares instead of failing on unknown keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def from_record(cls: type[T], record: Mapping[str, Any]) -> T:
    """Build dataclass ``cls`` from a row, ignoring columns it does not declare.

    Raises:
        KeyError: the row lacks a field the dataclass requires.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: record[name] for name in names})


def maybe(cls: type[T], record: Mapping[str, Any] | None) -> T | None:
    """Like :func:`from_record`, passing ``None`` through (row not found)."""
    return None if record is None else from_record(cls, record)


def returned(cls: type[T], record: Mapping[str, Any] | None) -> T:
    """Like :func:`from_record` for a statement that always returns its row (``INSERT`` /
    ``UPDATE ... RETURNING`` of a row known to exist); a missing row is a bug (assertion)."""
    assert record is not None
    return from_record(cls, record)
